// The proxy image as a user gets it: `npm run image:build` makes the OCI archive, podman loads it
// and runs `rauta serve` from it on examples/ (the README's standalone demo), and requests go
// through the containerised proxy to the demo backends on the host.
import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { buildImage, IMAGE } from "../../hack/image/build.ts";
import { PODMAN_GLOBAL_ARGS, podmanRunLimits } from "../../hack/image/podman.ts";
import { repoRoot } from "../../hack/cluster/config.ts";
import { eventually } from "./helpers/cluster.ts";

const CONTAINER = "rauta-image-spec";

function podman(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("podman", [...PODMAN_GLOBAL_ARGS, ...args], {
    encoding: "utf8",
    timeout: 300_000,
  });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

describe("the proxy image (hack/image, OCI archive, podman)", function () {
  this.timeout(30 * 60_000);
  let backends: ChildProcess | undefined;

  after(() => {
    podman(["rm", "--force", "--ignore", CONTAINER]);
    podman(["rmi", "--force", "--ignore", IMAGE]);
    backends?.kill();
  });

  it("builds, loads into podman and serves examples/ from the container", async () => {
    const archive = buildImage();
    const loaded = podman(["load", "--input", archive]);
    expect(loaded.status, loaded.out).to.equal(0);
    expect(loaded.out).to.contain(IMAGE);

    backends = spawn(join(repoRoot, "node_modules/.bin/node"), ["examples/demo-backend.ts"], {
      cwd: repoRoot,
      stdio: "ignore",
    });
    podman(["rm", "--force", "--ignore", CONTAINER]);
    const started = podman([
      "run",
      "--detach",
      "--name",
      CONTAINER,
      ...podmanRunLimits(),
      "--network=host",
      "--volume",
      `${join(repoRoot, "examples")}:/examples:ro`,
      IMAGE,
      "serve",
      "-f",
      "/examples",
    ]);
    expect(started.status, started.out).to.equal(0);

    const redirect = await eventually("the containerised gateway answers", 60_000, async () => {
      const r = await fetch("http://127.0.0.1:8080/old/users", { redirect: "manual" });
      return r.status === 301 ? r : undefined;
    }).catch(error => {
      throw new Error(`${(error as Error).message}\n${podman(["logs", CONTAINER]).out}`);
    });
    expect(redirect.headers.get("location")).to.equal("http://127.0.0.1:8080/api/users");

    const routed = await fetch("http://127.0.0.1:8080/api/users");
    expect(routed.status).to.equal(200);
    expect(routed.headers.get("x-served-by")).to.equal("rauta");
    expect((await routed.json()) as { backend: string }).to.include({ backend: "api" });
    // the container's own Node: the pinned one, not the host's
    const version = podman(["exec", CONTAINER, "/usr/local/bin/node", "--version"]);
    expect(version.out.trim()).to.equal(process.version);
  });
});
