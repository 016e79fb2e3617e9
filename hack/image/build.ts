// `npm run image:build`: the proxy image rauta.dev/proxy:<version> as an OCI archive, built
// without a daemon or a registry (none is reachable from here, and a user's CI may have neither):
//   1. a Debian bookworm root (minbase + ca-certificates) made with mmdebstrap from Debian's
//      packages, cached by its package list under ~/.cache/rauta/image/;
//   2. a build context: that root, the project's pinned Node binary, and the app (package.json,
//      proxy/, capabilities/, generated/, the built-in plugins) with its production dependencies
//      (`npm ci --omit=dev`, cached by package-lock.json);
//   3. `buildah build -f hack/image/Containerfile` (no RUN step: no container runtime needed),
//      then `buildah push … oci-archive:<out>`.
// Flags: --out <path> (default dist/images/rauta-proxy-<version>.oci.tar). Prints the archive's
// path. Load it with `podman load -i`, `kind load image-archive`, `ctr images import`, …
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { ensureHostTools } from "../cluster/build.ts";
import { cacheRoot, repoRoot } from "../cluster/config.ts";
import { log, run, withLock } from "../cluster/util.ts";

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
export const IMAGE = `rauta.dev/proxy:${pkg.version}`;
export const DEFAULT_ARCHIVE = join(repoRoot, `dist/images/rauta-proxy-${pkg.version}.oci.tar`);
const SUITE = "bookworm";
// libatomic1: the official Node binaries link it (libstdc++ and libc come with minbase)
const PACKAGES = ["ca-certificates", "libatomic1"];
// what the proxy reads at run time, next to its code (proxy/runtime/package-root.ts)
const APP = [
  "package.json",
  "package-lock.json",
  "proxy",
  "capabilities",
  "generated",
  "plugins-sdk/builtins/dist",
];
const cacheDir = join(cacheRoot, "image");

export const IMAGE_TOOLS: Record<string, string> = {
  mmdebstrap: "mmdebstrap",
  buildah: "buildah",
  podman: "podman",
  // podman's default crun refuses this kind of host's hybrid cgroup layout; runc runs there
  runc: "runc",
};

function sha(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 12);
}

/** Runs a command with its output on stderr; throws with the command line when it fails. */
function step(cmd: string, args: string[], cwd?: string): void {
  // the project's Node first, as everywhere: npm then runs on it
  const env = {
    ...process.env,
    PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
  };
  const r = spawnSync(cmd, args, { cwd, env, stdio: ["ignore", 2, 2], timeout: 20 * 60_000 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}); see above`);
}

// Write-then-rename under a lock, so concurrent builds share one cached result.
function cached(name: string, make: (tmp: string) => void): string {
  const out = join(cacheDir, name);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  withLock(join(cacheDir, ".lock"), 30 * 60_000, () => {
    if (existsSync(out)) return;
    // the name keeps its suffix: mmdebstrap picks its output format from it
    const tmp = join(cacheDir, `tmp-${process.pid}-${name}`);
    rmSync(tmp, { recursive: true, force: true });
    make(tmp);
    renameSync(tmp, out);
  });
  return out;
}

function rootfs(): string {
  return cached(`rootfs-${SUITE}-${sha(SUITE, ...PACKAGES)}.tar`, tmp => {
    log(`image: mmdebstrap ${SUITE} (minbase + ${PACKAGES.join(", ")})`);
    step("mmdebstrap", ["--variant=minbase", `--include=${PACKAGES.join(",")}`, SUITE, tmp]);
  });
}

// The proxy's production dependencies, minus pepr: that is the control plane's (and brings a
// TypeScript toolchain); the proxy never imports it (331 → 229 MB).
const NOT_IN_IMAGE = ["pepr"];

function productionModules(): string {
  const lock = readFileSync(join(repoRoot, "package-lock.json"), "utf8");
  return cached(`node_modules-${sha(lock, ...NOT_IN_IMAGE)}`, tmp => {
    log("image: npm ci --omit=dev (production dependencies)");
    mkdirSync(tmp, { recursive: true });
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(repoRoot, f), join(tmp, f));
    const quiet = ["--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"];
    step("npm", ["ci", "--omit=dev", ...quiet], tmp);
    step("npm", ["uninstall", "--no-save", "--omit=dev", ...quiet, ...NOT_IN_IMAGE], tmp);
  });
}

export function buildImage(out = DEFAULT_ARCHIVE): string {
  ensureHostTools(IMAGE_TOOLS);
  if (!existsSync(join(repoRoot, "plugins-sdk/builtins/dist")))
    step(join(repoRoot, "node_modules/.bin/node"), [join(repoRoot, "hack/plugins/build.ts")]);
  const context = mkdtempSync(join(tmpdir(), "rauta-image-"));
  try {
    cpSync(rootfs(), join(context, "rootfs.tar"));
    // the binary of the pinned `node` package, not the host's (v20 here)
    cpSync(
      run(join(repoRoot, "node_modules/.bin/node"), ["-p", "process.execPath"]).trim(),
      join(context, "node"),
    );
    for (const rel of APP)
      cpSync(join(repoRoot, rel), join(context, "app", rel), { recursive: true });
    cpSync(join(productionModules(), "node_modules"), join(context, "app/node_modules"), {
      recursive: true,
    });
    log(`image: buildah build ${IMAGE}`);
    step("buildah", [
      "build",
      "--layers=false",
      "-f",
      join(repoRoot, "hack/image/Containerfile"),
      "-t",
      IMAGE,
      context,
    ]);
    mkdirSync(dirname(out), { recursive: true });
    rmSync(out, { force: true });
    step("buildah", ["push", IMAGE, `oci-archive:${out}:${IMAGE}`]);
    // the archive is the product: the local copy would pile up in containers/storage
    step("buildah", ["rmi", "--force", IMAGE]);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  log(`image: ${IMAGE} → ${out}`);
  return out;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf("--out");
  try {
    console.log(buildImage(i >= 0 ? resolve(argv[i + 1]!) : DEFAULT_ARCHIVE));
  } catch (error) {
    process.stderr.write(
      `image:build failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
