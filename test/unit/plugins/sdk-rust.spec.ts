// The Rust plugin SDK (plugins-sdk/rust): its native tests (the codec against the shared vectors,
// the JSON reader), then its modules built for wasm32-unknown-unknown and run through the
// proxy's sandbox: the no-op, the template, and hostcheck, which echoes every decoded input and
// exercises every host function. Without a rustc that has the wasm32 standard library every test
// is skipped, and the reason (each compiler tried, what it lacked, the apt command) is printed;
// with CI=true or RAUTA_INSTALL_TOOLCHAINS=1 the build installs Debian's toolchain itself.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  buildRustPlugins,
  ensureRustToolchain,
  findWasmRustc,
  testRustSdk,
} from "../../../hack/plugins/build-rust.ts";
import type { RustPluginBuild, RustToolchain } from "../../../hack/plugins/build-rust.ts";
import { decodeDecision, encodeInput } from "../../../proxy/plugins/abi.ts";
import type { Decision, PluginInput } from "../../../proxy/plugins/abi.ts";
import { VECTORS_PATH } from "../../../hack/plugins/vectors.ts";
import {
  NOW,
  closeHarnesses,
  compileFile,
  harness,
  microsPerCall,
  request,
  withHeaders,
} from "../../helpers/plugin-harness.ts";
import type { Harness } from "../../helpers/plugin-harness.ts";
import type { CompiledPlugin } from "../../../proxy/plugins/sandbox.ts";

interface VectorInput extends Omit<PluginInput, "body"> {
  body?: string;
}
interface Vectors {
  inputs: Array<{ name: string; input: VectorInput; hex: string }>;
}

const te = new TextEncoder();
const td = new TextDecoder();

const compile = (path: string) => compileFile(path, 16 << 20);

describe("Rust plugin SDK (plugins-sdk/rust)", function () {
  // a first build compiles the SDK and three modules with LTO (seconds each on a busy machine)
  this.timeout(180_000);
  let toolchain: RustToolchain;
  let builds: Map<string, RustPluginBuild>;
  let plugins: Map<string, CompiledPlugin>;
  const plugin = (name: string) => plugins.get(name)!;

  afterEach(async () => {
    await closeHarnesses();
  });

  before(async function () {
    try {
      toolchain = await ensureRustToolchain(line => console.log(`      ${line}`));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      console.log(
        `      skipped, no Rust toolchain for wasm32:\n${why.replace(/^/gm, "        ")}`,
      );
      this.skip();
    }
    const t0 = performance.now();
    const built = await buildRustPlugins();
    const ms = performance.now() - t0;
    builds = new Map(built.map(b => [b.name, b]));
    plugins = new Map(built.map(b => [b.name, compile(b.path)]));
    for (const b of built) expect(b.warnings, `rustc warned building ${b.name}`).to.equal("");
    const sizes = built
      .map(
        b =>
          `${b.name} ${(b.bytes / 1024).toFixed(1)} KiB${b.built ? ` (${(b.ms / 1000).toFixed(1)} s)` : ""}`,
      )
      .join(", ");
    console.log(`      ${toolchain.rustc} (${toolchain.version}), linker ${toolchain.linkerNote}`);
    console.log(
      `      rust modules: ${sizes}; ${built.some(b => b.built) ? "built" : "up to date"} in ${ms.toFixed(0)} ms`,
    );
  });

  it("finds the compiler it builds with", () => {
    expect(findWasmRustc()).to.equal(toolchain.rustc);
  });

  it("passes its native tests: the codec against every shared vector, the JSON reader (rustc --test)", async () => {
    const run = await testRustSdk();
    expect(run.ok, run.output).to.equal(true);
    expect(run.output).to.match(/every_input_vector_decodes_to_its_fields \.\.\. ok/);
    expect(run.output).to.match(/every_decision_vector_encodes_to_its_hex \.\.\. ok/);
    expect(run.output).to.match(/block_prefix \.\.\. ok/);
    const results = run.output.match(/^test result: .*$/gm) ?? [];
    expect(results.length, run.output).to.be.at.least(2);
    for (const r of results) expect(r).to.match(/^test result: ok\. \d+ passed; 0 failed/);
    console.log(`      native tests: ${results.length} runs in ${(run.ms / 1000).toFixed(1)} s`);
  });

  it("builds modules that export only the phases they implement and import only the ABI's hosts", () => {
    expect([...plugin("noop").exports].sort()).to.deep.equal(["on_request", "on_response"]);
    expect([...plugin("template").exports].sort()).to.deep.equal(["on_request"]);
    expect([...plugin("hostcheck").exports].sort()).to.deep.equal(["on_request", "on_response"]);
    for (const [name, p] of plugins) {
      expect(p.wasi, name).to.equal(false);
      const exports = WebAssembly.Module.exports(p.module);
      expect(
        exports.some(e => e.name === "memory" && e.kind === "memory"),
        name,
      ).to.equal(true);
      const modules = new Set(WebAssembly.Module.imports(p.module).map(i => i.module));
      for (const m of modules)
        expect(["rauta:host", "extism:host/env"], `${name} imports ${m}`).to.include(m);
    }
    const imports = WebAssembly.Module.imports(plugin("hostcheck").module)
      .filter(i => i.module === "rauta:host")
      .map(i => i.name)
      .sort();
    expect(imports).to.deep.equal([
      "cache_get",
      "cache_set",
      "input_copy",
      "log",
      "now_ms",
      "output_set",
      "rate_take",
      "verify_signature",
    ]);
  });

  it("a second build is skipped by its stamp", async () => {
    const again = await buildRustPlugins();
    expect(again.map(b => [b.name, b.built])).to.deep.equal(
      [...builds.keys()].map(n => [n, false]),
    );
  });

  describe("no-op", () => {
    it("answers CONTINUE with an empty output in both phases", async () => {
      const h = await harness(plugin("noop"));
      for (const phase of ["request", "response"] as const) {
        const res = await h.call(phase, encodeInput(request({ phase })));
        expect(res.ok, phase).to.equal(true);
        if (res.ok) {
          expect(res.output.length).to.equal(0);
          expect(decodeDecision(res.output, phase)).to.deep.equal({ action: "continue" });
        }
      }
    });

    it("costs this much per call (20k calls)", async () => {
      const h = await harness(plugin("noop"));
      const vectors = JSON.parse(fs.readFileSync(VECTORS_PATH, "utf8")) as Vectors;
      const input = new Uint8Array(
        Buffer.from(vectors.inputs.find(v => v.name === "request-headers")!.hex, "hex"),
      );
      const us = await microsPerCall(h, "request", input, 20_000, 500);
      console.log(
        `      no-op: ${us.toFixed(1)} µs/call (${input.length}-byte input: input_copy, decode, CONTINUE)`,
      );
    });
  });

  describe("template", () => {
    it("adds its response header from on_request", async () => {
      const h = await harness(plugin("template"));
      expect(await h.decide("request", request())).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-rauta-plugin", value: "rust-template" }],
      });
    });

    it("rejects its blocked path, and what is under it, with 403 and logs it", async () => {
      const h = await harness(plugin("template"));
      for (const path of ["/blocked", "/blocked/deeper"]) {
        const d = await h.decide("request", request({ path }));
        expect(d.action, path).to.equal("reject");
        if (d.action === "reject") {
          expect(d.status).to.equal(403);
          expect(d.headers).to.deep.equal([["content-type", "text/plain; charset=utf-8"]]);
          expect(td.decode(d.body)).to.equal("blocked by the rust template\n");
        }
      }
      expect((await h.decide("request", request({ path: "/blockedx" }))).action).to.equal("modify");
      expect(h.logs).to.deep.equal([
        ["info", "rejecting GET /blocked from 127.0.0.1"],
        ["info", "rejecting GET /blocked/deeper from 127.0.0.1"],
      ]);
    });

    it("reads its config (spec.config), \\u escapes included", async () => {
      const h = await harness(
        plugin("template"),
        '{"header":"x-team","value":"caf\\u00e9 \\ud83d\\ude00","blockPath":"/admin"}',
      );
      expect(await h.decide("request", request())).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-team", value: "café 😀" }],
      });
      expect((await h.decide("request", request({ path: "/admin" }))).action).to.equal("reject");
      expect((await h.decide("request", request({ path: "/blocked" }))).action).to.equal("modify");
    });

    it("costs this much per call through the SDK (5k calls)", async () => {
      const h = await harness(plugin("template"));
      const us = await microsPerCall(h, "request", encodeInput(request()), 5000);
      console.log(
        `      template: ${us.toFixed(1)} µs/call (input_copy, decode, MODIFY, output_set)`,
      );
    });
  });

  describe("hostcheck: the SDK's calls through the sandbox", () => {
    interface Answer {
      input: VectorInput;
      nowMs: number;
      config: unknown;
      verify?: { valid: boolean; error?: string };
      rate?: { allowed: boolean; remaining: number; retryAfter: number };
      cache?: { found?: boolean; value?: string; stored?: boolean };
    }
    const answer = (d: Decision): Answer => {
      if (d.action !== "reject") return expect.fail(`expected the JSON answer, got ${d.action}`);
      expect(d.status).to.equal(200);
      return JSON.parse(td.decode(d.body)) as Answer;
    };
    const CONFIG = { a: 1, b: ["x", true, null, { c: -2.5e-3 }], s: 'q"\\\n\u00e9\u{1F600}' };
    let h: Harness;
    beforeEach(async () => {
      h = await harness(plugin("hostcheck"), JSON.stringify(CONFIG));
    });

    it("decodes every shared input vector as the proxy encodes it", async () => {
      const vectors = JSON.parse(fs.readFileSync(VECTORS_PATH, "utf8")) as Vectors;
      for (const vec of vectors.inputs) {
        const { body, ...rest } = vec.input;
        const input: PluginInput = body === undefined ? rest : { ...rest, body: te.encode(body) };
        // the host's encoding (a view into a larger buffer), and the vector's own bytes (a view
        // into Node's Buffer pool): Extism's input_length counts the whole underlying buffer, the
        // SDK trusts input_copy's count
        for (const bytes of [encodeInput(input), Buffer.from(vec.hex, "hex")]) {
          const res = await h.call(input.phase, bytes);
          if (!res.ok) expect.fail(`${vec.name}: ${res.message}`);
          expect(answer(decodeDecision(res.output, input.phase)).input, vec.name).to.deep.equal(
            vec.input,
          );
        }
      }
    });

    it("reads the config with the SDK's JSON reader, and the clock", async () => {
      const a = answer(await h.decide("request", request()));
      expect(a.config).to.deep.equal(CONFIG);
      expect(a.nowMs).to.equal(NOW);
      const bare = await harness(plugin("hostcheck"));
      expect(answer(await bare.decide("request", request())).config).to.deep.equal({});
    });

    it("fails the call, and logs why, when the config is not JSON", async () => {
      const bad = await harness(plugin("hostcheck"), "{not json");
      const res = await bad.call("request", encodeInput(request()));
      expect(res.ok).to.equal(false);
      if (!res.ok) {
        expect(res.reason).to.equal("error");
        expect(res.message).to.match(/could not parse the config/);
      }
      expect(bad.logs).to.deep.equal([
        [
          "error",
          "rauta-plugin: the config is not JSON: invalid JSON at byte 1: expected a string key in an object",
        ],
      ]);
    });

    it("logs at every level", async () => {
      for (const [n, level] of [
        [0, "debug"],
        [1, "info"],
        [2, "warn"],
        [3, "error"],
      ] as const)
        await h.decide("request", withHeaders([["x-hostcheck-log", `${n}:hello ${level} é`]]));
      expect(h.logs).to.deep.equal([
        ["debug", "hello debug é"],
        ["info", "hello info é"],
        ["warn", "hello warn é"],
        ["error", "hello error é"],
      ]);
    });

    it("keeps bytes in the host's cache across calls (cache_set, cache_get)", async () => {
      const cache = async (v: string) =>
        answer(await h.decide("request", withHeaders([["x-hostcheck-cache", v]]))).cache;
      expect(await cache("get:k")).to.deep.equal({});
      expect(await cache("set:k:v1:1000")).to.deep.equal({ stored: true });
      expect(await cache("get:k")).to.deep.equal({ found: true, value: "v1" });
      // longer than the SDK's first buffer: fetched again at its size
      const long = "x".repeat(1000);
      expect(await cache(`set:long:${long}:1000`)).to.deep.equal({ stored: true });
      expect(await cache("get:long")).to.deep.equal({ found: true, value: long });
      expect(await cache("set:k:v2:0")).to.deep.equal({});
    });

    it("takes rate-limit tokens", async () => {
      const take = async (key: string, spec = "0.5:2") =>
        answer(await h.decide("request", withHeaders([["x-hostcheck-rate", `${key}:${spec}`]])))
          .rate;
      expect(await take("client-a")).to.deep.equal({ allowed: true, remaining: 1, retryAfter: 0 });
      expect(await take("client-a")).to.deep.equal({ allowed: true, remaining: 0, retryAfter: 0 });
      // the clock stands still: the next token is 1 / 0.5 s away
      expect(await take("client-a")).to.deep.equal({ allowed: false, remaining: 0, retryAfter: 2 });
      expect(await take("client-b")).to.deep.equal({ allowed: true, remaining: 1, retryAfter: 0 });
      // a rate the host refuses answers -1: denied, one second
      expect(await take("client-c", "0:2")).to.deep.equal({
        allowed: false,
        remaining: 0,
        retryAfter: 1,
      });
    });

    it("verifies signatures", async () => {
      const verify = async (alg: number, key: Uint8Array, data: Uint8Array, sig: Uint8Array) => {
        const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
        const v = `${alg}:${hex(key)}:${hex(data)}:${hex(sig)}`;
        return answer(await h.decide("request", withHeaders([["x-hostcheck-verify", v]]))).verify;
      };
      const data = te.encode("header.payload");
      const secret = te.encode("s3cret");
      const mac = crypto.createHmac("sha256", secret).update(data).digest();
      expect(await verify(1, secret, data, mac)).to.deep.equal({ valid: true });
      expect(await verify(1, te.encode("other"), data, mac)).to.deep.equal({ valid: false });

      const { publicKey, privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
      const pem = te.encode(publicKey.export({ type: "spki", format: "pem" }) as string);
      const sig = crypto.sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" });
      expect(await verify(3, pem, data, sig)).to.deep.equal({ valid: true });
      expect(await verify(3, pem, te.encode("tampered"), sig)).to.deep.equal({ valid: false });
      expect(await verify(2, pem, data, sig)).to.deep.equal({
        valid: false,
        error: "key unusable",
      });
      const jwk = te.encode(JSON.stringify(publicKey.export({ format: "jwk" })));
      expect(await verify(3, jwk, data, sig)).to.deep.equal({ valid: true });
      expect(await verify(3, te.encode("not a key"), data, new Uint8Array(0))).to.deep.equal({
        valid: false,
        error: "key unusable",
      });
    });

    it("builds every op, derived from the input, in the phase it is valid in", async () => {
      const input = withHeaders([["x-hostcheck-modify", "1"]], {
        path: "/p",
        query: "a=1",
        method: "POST",
      });
      expect(await h.decide("request", input)).to.deep.equal({
        action: "modify",
        ops: [
          { op: "setRequestHeader", name: "x-method", value: "POST" },
          { op: "addRequestHeader", name: "x-client", value: "127.0.0.1" },
          { op: "removeRequestHeader", name: "x-hostcheck-modify" },
          { op: "setPath", path: "/echo/p" },
          { op: "setQuery", query: "q=a=1" },
          { op: "setAuthority", authority: "upstream.internal:8080" },
          { op: "setResponseHeader", name: "x-route", value: "default/api/rule/0" },
          { op: "addResponseHeader", name: "x-status", value: "0" },
          { op: "removeResponseHeader", name: "server" },
          { op: "setMetadata", key: "hostcheck.path", value: "/p" },
        ],
      });
      const response = { ...input, phase: "response" as const, status: 201 };
      expect(await h.decide("response", response)).to.deep.equal({
        action: "modify",
        ops: [
          { op: "setResponseHeader", name: "x-route", value: "default/api/rule/0" },
          { op: "addResponseHeader", name: "x-status", value: "201" },
          { op: "removeResponseHeader", name: "server" },
          { op: "setMetadata", key: "hostcheck.path", value: "/p" },
        ],
      });
    });

    it("turns a handler error into a plugin failure with its message", async () => {
      const res = await h.call(
        "request",
        encodeInput(withHeaders([["x-hostcheck-fail", "error"]])),
      );
      expect(res.ok).to.equal(false);
      if (!res.ok) {
        expect(res.reason).to.equal("error");
        expect(res.message).to.match(/hostcheck failed as asked/);
      }
    });

    it("turns a panic into a trap, its message logged first (panic=abort)", async () => {
      const res = await h.call(
        "request",
        encodeInput(withHeaders([["x-hostcheck-fail", "panic"]])),
      );
      expect(res.ok).to.equal(false);
      if (!res.ok) expect(res.reason).to.equal("trap");
      expect(h.logs).to.have.length(1);
      expect(h.logs[0]![0]).to.equal("error");
      expect(h.logs[0]![1]).to.match(
        /^plugin panicked: panicked at 'hostcheck panicked as asked', /,
      );
    });

    it("fails on an input that is not ABI v1", async () => {
      const bytes = encodeInput(request()).slice();
      bytes[1] = 2;
      const res = await h.call("request", bytes);
      expect(res.ok).to.equal(false);
      if (!res.ok) {
        expect(res.reason).to.equal("error");
        expect(res.message).to.match(/input is for ABI version 2; this SDK speaks version 1/);
      }
    });
  });
});

describe("Rust plugin SDK: without a usable compiler", function () {
  this.timeout(60_000);
  const script = path.resolve(import.meta.dirname, "../../../hack/plugins/build-rust.ts");
  /** `build-rust.ts --check` with RAUTA_RUSTC set and no permission to install */
  const check = (rustc: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, RAUTA_RUSTC: rustc };
    delete env.CI;
    delete env.RAUTA_INSTALL_TOOLCHAINS;
    return spawnSync(process.execPath, [script, "--check"], { env, encoding: "utf8" });
  };

  it("names the compiler tried and the apt command that fixes it", () => {
    const r = check("/nonexistent/rustc");
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.include("no rustc here can build wasm32-unknown-unknown modules");
    expect(r.stderr).to.include("/nonexistent/rustc: not found");
    expect(r.stderr).to.match(
      /apt-get install -y --no-install-recommends rustc libstd-rust-dev-wasm32 lld\S*/,
    );
  });

  it("says what a compiler lacks: here the wasm32 standard library", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-fake-rustc-"));
    try {
      const fake = path.join(dir, "rustc");
      fs.mkdirSync(path.join(dir, "sysroot/lib/rustlib/x86_64-unknown-linux-gnu/lib"), {
        recursive: true,
      });
      fs.writeFileSync(
        fake,
        `#!/bin/sh\ncase "$1" in\n  --version) echo "rustc 1.80.0 (fake)";;\n  --print) echo "${dir}/sysroot";;\n  -vV) echo "host: x86_64-unknown-linux-gnu";;\nesac\n`,
        { mode: 0o755 },
      );
      const r = check(fake);
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stderr).to.include(
        `${fake} (rustc 1.80.0 (fake), sysroot ${dir}/sysroot): no wasm32-unknown-unknown standard library`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
