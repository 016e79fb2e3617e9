// The Go plugin SDK (plugins-sdk/go): its native tests (the codec against the shared vectors),
// then its modules built for wasip1 and run through the proxy's sandbox: the no-op, the
// template, and hostcheck, which echoes every decoded input and exercises every host function.
import { expect } from "chai";
import crypto from "node:crypto";
import fs from "node:fs";
import { buildGoPlugins, testGoSdk } from "../../../hack/plugins/build-go.ts";
import type { GoPluginBuild } from "../../../hack/plugins/build-go.ts";
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

const compile = (path: string) => compileFile(path, 64 << 20);

describe("Go plugin SDK (plugins-sdk/go)", function () {
  // the first build on a machine compiles the Go runtime for wasm
  this.timeout(180_000);
  let builds: Map<string, GoPluginBuild>;
  let plugins: Map<string, CompiledPlugin>;
  const plugin = (name: string) => plugins.get(name)!;

  afterEach(async () => {
    await closeHarnesses();
  });

  before(async function () {
    const t0 = performance.now();
    const built = await buildGoPlugins();
    const ms = performance.now() - t0;
    builds = new Map(built.map(b => [b.name, b]));
    plugins = new Map(built.map(b => [b.name, compile(b.path)]));
    const sizes = built.map(b => `${b.name} ${(b.bytes / 1e6).toFixed(2)} MB`).join(", ");
    console.log(
      `      go modules: ${sizes}; ${built.some(b => b.built) ? "built" : "up to date"} in ${ms.toFixed(0)} ms`,
    );
  });

  it("passes its native tests: the codec against every shared vector (go test ./...)", async () => {
    const run = await testGoSdk();
    expect(run.ok, run.output).to.equal(true);
    expect(run.output).to.match(/^ok\s+github\.com\/rauta-io\/rauta\/plugins-sdk\/go\s/m);
    expect(run.output).to.match(/^ok\s+github\.com\/rauta-io\/rauta\/plugins-sdk\/go\/template\s/m);
  });

  it("builds WASI reactors that export only the phases they implement", () => {
    expect([...plugin("noop").exports].sort()).to.deep.equal(["_initialize", "on_request"]);
    expect([...plugin("template").exports].sort()).to.deep.equal([
      "_initialize",
      "on_request",
      "on_response",
    ]);
    for (const p of plugins.values()) expect(p.wasi).to.equal(true);
    const imports = WebAssembly.Module.imports(plugin("template").module)
      .filter(i => i.module === "rauta:host")
      .map(i => i.name);
    expect(imports).to.include.members(["input_copy", "output_set"]);
  });

  it("a second build is skipped by its stamp", async () => {
    const again = await buildGoPlugins();
    expect(again.map(b => [b.name, b.built])).to.deep.equal(
      [...builds.keys()].map(n => [n, false]),
    );
  });

  describe("no-op", () => {
    it("answers CONTINUE with an empty output", async () => {
      const h = await harness(plugin("noop"));
      const res = await h.call("request", encodeInput(request()));
      expect(res.ok).to.equal(true);
      if (res.ok) {
        expect(res.output.length).to.equal(0);
        expect(decodeDecision(res.output, "request")).to.deep.equal({ action: "continue" });
      }
    });

    it("costs this much per call (5k calls)", async () => {
      const h = await harness(plugin("noop"));
      const us = await microsPerCall(h, "request", encodeInput(request()), 5000);
      console.log(`      no-op: ${us.toFixed(1)} µs/call`);
    });
  });

  describe("template", () => {
    it("adds its response header from on_request", async () => {
      const h = await harness(plugin("template"));
      expect(await h.decide("request", request())).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-rauta-plugin", value: "go-template" }],
      });
    });

    it("rejects its blocked path with 403 and logs it", async () => {
      const h = await harness(plugin("template"));
      const d = await h.decide("request", request({ path: "/blocked" }));
      expect(d.action).to.equal("reject");
      if (d.action === "reject") {
        expect(d.status).to.equal(403);
        expect(d.headers).to.deep.equal([["content-type", "text/plain; charset=utf-8"]]);
        expect(td.decode(d.body)).to.equal("blocked by the rauta go template\n");
      }
      expect(h.logs).to.deep.equal([["info", "rejected /blocked"]]);
    });

    it("stamps the upstream status from on_response", async () => {
      const h = await harness(plugin("template"));
      const input = request({
        phase: "response",
        status: 503,
        responseHeaders: [["server", "up"]],
      });
      expect(await h.decide("response", input)).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-rauta-upstream-status", value: "503" }],
      });
    });

    it("reads its config (spec.config)", async () => {
      const h = await harness(
        plugin("template"),
        JSON.stringify({ header: "x-team", value: "edge", blockPath: "/admin" }),
      );
      expect(await h.decide("request", request())).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-team", value: "edge" }],
      });
      expect((await h.decide("request", request({ path: "/admin" }))).action).to.equal("reject");
      expect((await h.decide("request", request({ path: "/blocked" }))).action).to.equal("modify");
    });

    it("fails calls when its config is invalid", async () => {
      for (const [config, message] of [
        [JSON.stringify({ header: "" }), /header must not be empty/],
        ["{not json", /invalid character/],
        [JSON.stringify({ header: 7 }), /cannot unmarshal number/],
      ] as const) {
        const h = await harness(plugin("template"), config);
        const res = await h.call("request", encodeInput(request()));
        expect(res.ok).to.equal(false);
        if (!res.ok) {
          expect(res.reason).to.equal("error");
          expect(res.message).to.match(message);
        }
      }
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
    let h: Harness;
    beforeEach(async () => {
      h = await harness(plugin("hostcheck"), JSON.stringify({ a: 1, b: ["x"] }));
    });

    it("decodes every shared input vector as the proxy encodes it", async () => {
      const vectors = JSON.parse(fs.readFileSync(VECTORS_PATH, "utf8")) as Vectors;
      for (const vec of vectors.inputs) {
        const { body, ...rest } = vec.input;
        const input: PluginInput = body === undefined ? rest : { ...rest, body: te.encode(body) };
        // the host's encoding, and the vector's own bytes (a view into Node's Buffer pool)
        for (const bytes of [encodeInput(input), Buffer.from(vec.hex, "hex")]) {
          const res = await h.call(input.phase, bytes);
          if (!res.ok) expect.fail(`${vec.name}: ${res.message}`);
          expect(answer(decodeDecision(res.output, input.phase)).input, vec.name).to.deep.equal(
            vec.input,
          );
        }
      }
    });

    it("reads the config and the clock", async () => {
      const a = answer(await h.decide("request", request()));
      expect(a.config).to.deep.equal({ a: 1, b: ["x"] });
      expect(a.nowMs).to.equal(NOW);
      const bare = await harness(plugin("hostcheck"));
      expect(answer(await bare.decide("request", request())).config).to.deep.equal({});
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

    it("reads its config (Extism blocks) on every call, 17,000 calls in a row", async function () {
      this.timeout(120_000);
      const input = encodeInput(request());
      // past Extism 1.0.3's 16,383 calls: blocks the calls allocate are freed (sandbox.ts)
      for (let i = 0; i < 17_000; i++) {
        const r = await h.call("request", input);
        if (!r.ok) expect.fail(`call ${i} failed: ${r.message}`);
      }
    });

    it("takes rate-limit tokens", async () => {
      const take = async (key: string) =>
        answer(await h.decide("request", withHeaders([["x-hostcheck-rate", `${key}:0.5:2`]]))).rate;
      expect(await take("client-a")).to.deep.equal({ allowed: true, remaining: 1, retryAfter: 0 });
      expect(await take("client-a")).to.deep.equal({ allowed: true, remaining: 0, retryAfter: 0 });
      // the clock stands still: the next token is 1 / 0.5 s away
      expect(await take("client-a")).to.deep.equal({ allowed: false, remaining: 0, retryAfter: 2 });
      expect(await take("client-b")).to.deep.equal({ allowed: true, remaining: 1, retryAfter: 0 });
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
        error: "rauta: verification key unusable for the algorithm",
      });
      expect(await verify(3, te.encode("not a key"), data, new Uint8Array(0))).to.have.property(
        "error",
      );
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

    it("turns a handler error or panic into a plugin failure with its message", async () => {
      for (const [how, message] of [
        ["error", /hostcheck failed as asked/],
        ["panic", /panic: hostcheck panicked as asked/],
      ] as const) {
        const fresh = await harness(plugin("hostcheck"));
        const res = await fresh.call(
          "request",
          encodeInput(withHeaders([["x-hostcheck-fail", how]])),
        );
        expect(res.ok, how).to.equal(false);
        if (!res.ok) {
          expect(res.reason).to.equal("error");
          expect(res.message).to.match(message);
        }
      }
    });

    it("fails on an input that is not ABI v1", async () => {
      const bytes = encodeInput(request()).slice();
      bytes[1] = 2;
      const res = await h.call("request", bytes);
      expect(res.ok).to.equal(false);
      if (!res.ok) expect(res.message).to.match(/ABI version 2; this SDK speaks version 1/);
    });
  });
});
