// `rauta plugin new → build → test` for each SDK, as a plugin author runs them: the template
// builds with the SDK's toolchain and the built module answers a request through the proxy's
// sandbox (the template adds a response header; a request to its blocked path gets 403).
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const rauta = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, "proxy/bin/rauta.ts"), "plugin", ...args], {
    encoding: "utf8",
    timeout: 240_000,
  });

describe("rauta plugin new / build / test", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-plugin-cli-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // what each template answers: a header it sets on responses, and the path it refuses
  const templates = {
    ts: { header: "x-plugin", blocked: "/forbidden" },
    go: { header: "x-rauta-plugin", blocked: "/blocked" },
    rust: { header: "x-rauta-plugin", blocked: "/blocked" },
  } as const;

  for (const [lang, t] of Object.entries(templates)) {
    it(`--lang ${lang}: the template builds and runs in the proxy's sandbox`, () => {
      const made = rauta("new", "--lang", lang, `my-${lang}`, "--dir", dir);
      expect(made.status, made.stderr).to.equal(0);
      const project = path.join(dir, `my-${lang}`);
      expect(fs.existsSync(path.join(project, "README.md"))).to.equal(true);
      const built = rauta("build", project);
      expect(built.status, built.stderr).to.equal(0);
      const wasm = path.join(project, "plugin.wasm");
      const ok = rauta("test", wasm, "--request", path.join(project, "request.yaml"), "-o", "json");
      expect(ok.status, ok.stderr).to.equal(0);
      const decision = (
        JSON.parse(ok.stdout) as {
          decision: { action: string; ops: Array<{ op: string; name: string }> };
        }
      ).decision;
      expect(decision.action).to.equal("modify");
      expect(decision.ops.map(o => [o.op, o.name])).to.deep.include([
        "setResponseHeader",
        t.header,
      ]);
      const req = path.join(project, "blocked.yaml");
      fs.writeFileSync(req, `path: ${t.blocked}\n`);
      const refused = rauta("test", wasm, "--request", req, "-o", "json");
      expect(refused.status, refused.stderr).to.equal(0);
      expect(
        (JSON.parse(refused.stdout) as { decision: { action: string; status: number } }).decision,
      ).to.include({
        action: "reject",
        status: 403,
      });
    });
  }

  it("test: a request file's body reaches a needsBody plugin, cut at --max-body-bytes", () => {
    const wasm = path.join(root, "plugins-sdk/assemblyscript/dist/sdk-body.wasm");
    const req = path.join(dir, "with-body.yaml");
    fs.writeFileSync(req, `method: POST\nbody: "0123456789"\n`);
    const whole = rauta("test", wasm, "--request", req, "-o", "json");
    expect(whole.status, whole.stderr).to.equal(0);
    expect(JSON.parse(whole.stdout).decision.ops).to.deep.equal([
      { op: "setRequestHeader", name: "x-body-seen", value: "10:whole" },
    ]);
    const cut = rauta("test", wasm, "--request", req, "--max-body-bytes", "4", "-o", "json");
    expect(JSON.parse(cut.stdout).decision.ops[0].value).to.equal("4:truncated");
  });

  it("says what is wrong with a directory that is not a plugin project, and with a bad name", () => {
    const r = rauta("build", dir);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.contain("not a plugin project");
    const bad = rauta("new", "--lang", "ts", "Bad_Name", "--dir", dir);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.contain("lowercase name");
  });
});
