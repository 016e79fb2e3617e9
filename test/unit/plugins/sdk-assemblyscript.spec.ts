// The AssemblyScript SDK against the ABI's shared vectors (plugins-sdk/testdata/vectors.json): a
// module built with it decodes every input vector to exactly the fields the host encoded, and
// its builders encode every decision vector to exactly the host's bytes. Then the helpers the
// built-ins rely on (JSON, base64, percent-encoding), the failure paths, and the per-call arena.
import { expect } from "chai";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { decodeDecision, encodeInput } from "../../../proxy/plugins/abi.ts";
import type { Decision, PluginInput } from "../../../proxy/plugins/abi.ts";
import { Harness, plugins, request, text, withHeaders } from "./helpers.ts";

interface Vectors {
  inputs: Array<{ name: string; input: PluginInput & { body?: string }; hex: string }>;
  decisions: Array<{ name: string; decision: unknown; hex: string }>;
}

const vectors = JSON.parse(
  fs.readFileSync(
    fileURLToPath(new URL("../../../plugins-sdk/testdata/vectors.json", import.meta.url)),
    "utf8",
  ),
) as Vectors;

const te = new TextEncoder();

function rejectOf(d: Decision): Extract<Decision, { action: "reject" }> {
  if (d.action !== "reject") throw new Error(`expected a reject, got ${d.action}`);
  return d;
}

describe("AssemblyScript SDK", function () {
  this.timeout(120_000);
  let probe: Harness;

  before(async () => {
    await plugins();
    probe = await Harness.start("sdk-vectors");
  });
  after(() => probe.close());

  /** Runs a helper probe of the vectors module on a body; [status, body text]. */
  async function run(
    kind: string,
    body: string | Uint8Array,
    over: Partial<PluginInput> = {},
    extra: Array<[string, string]> = [],
  ) {
    const d = await probe.decide(
      withHeaders([["x-sdk-test", kind], ...extra], {
        method: "POST",
        body: typeof body === "string" ? te.encode(body) : body,
        ...over,
      }),
    );
    const r = rejectOf(d);
    return [r.status, text(r.body)] as const;
  }

  describe("decodes every input vector", () => {
    for (const v of vectors.inputs) {
      it(`${v.name}: every field, as the host encoded it`, async () => {
        const res = await probe.call(v.input.phase, Buffer.from(v.hex, "hex"));
        expect(res.ok, JSON.stringify(res)).to.equal(true);
        if (!res.ok) return;
        const r = rejectOf(decodeDecision(res.output, v.input.phase));
        expect(r.status).to.equal(200);
        const got = JSON.parse(text(r.body)) as Record<string, unknown> & {
          lookups: Record<string, [string | null, string[]]>;
          metaLookups: Record<string, string | null>;
          missingHeader: string | null;
        };
        const { lookups, metaLookups, missingHeader, ...fields } = got;
        expect(fields).to.deep.equal(v.input);
        // header(NAME) is case-insensitive and answers the first value; headerValues all, in order
        for (const [name] of v.input.requestHeaders) {
          const values = v.input.requestHeaders.filter(([k]) => k === name).map(([, val]) => val);
          expect(lookups[name], name).to.deep.equal([values[0], values]);
        }
        for (const [key, value] of v.input.metadata) expect(metaLookups[key]).to.equal(value);
        expect(missingHeader).to.equal(null);
      });
    }

    it("an input handed over as a view of a larger buffer (Extism reports the larger length)", async () => {
      const exact = Buffer.from(vectors.inputs[1]!.hex, "hex");
      const big = new Uint8Array(4096);
      big.set(exact);
      const res = await probe.call("request", big.subarray(0, exact.length));
      expect(res.ok, JSON.stringify(res)).to.equal(true);
    });
  });

  describe("encodes every decision vector byte for byte", () => {
    for (const v of vectors.decisions) {
      it(v.name, async () => {
        const h = await Harness.start("sdk-vectors", { decision: v.decision });
        try {
          for (const phase of ["request", "response"] as const) {
            const out = await h.output({
              ...request(),
              phase,
              status: phase === "response" ? 200 : 0,
            });
            expect(Buffer.from(out).toString("hex"), phase).to.equal(v.hex);
          }
        } finally {
          await h.close();
        }
      });
    }
  });

  describe("JSON", () => {
    const roundTrips: Array<[string, unknown]> = [
      [
        '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
        { a: 1, b: [true, false, null], c: { d: "e" } },
      ],
      [' \n\t{ "sp" : [ ] , "o" : { } }\r\n', { sp: [], o: {} }],
      ['"esc: \\" \\\\ \\/ \\b \\f \\n \\r \\t"', 'esc: " \\ / \b \f \n \r \t'],
      ['"\\u00e9t\\u00E9 \\u65e5 \\ud83d\\ude00"', "été 日 😀"],
      ['"raw UTF-8: été 日本 😀"', "raw UTF-8: été 日本 😀"],
      [
        "[0, -0.5, 1e3, 1.5E-2, 12345678901, -7, 2.5e+2]",
        [0, -0.5, 1000, 0.015, 12345678901, -7, 250],
      ],
      ['{"dup":1,"dup":2}', { dup: 2 }],
      ['"\\u0001\\u001f"', "\u0001\u001f"],
    ];
    for (const [doc, value] of roundTrips) {
      it(`accepts ${JSON.stringify(doc)}`, async () => {
        const [status, body] = await run("json", doc);
        expect(status, body).to.equal(200);
        expect(JSON.parse(body)).to.deep.equal(value);
      });
    }

    const refused: Array<[string, string | Uint8Array]> = [
      ["a trailing comma", "[1,2,]"],
      ["a trailing comma in an object", '{"a":1,}'],
      ["a leading zero", "[01]"],
      ["a bare fraction", "[.5]"],
      ["a dangling exponent", "[1e]"],
      ["a plus sign", "[+1]"],
      ["NaN", "[NaN]"],
      ["single quotes", "['a']"],
      ["an unquoted key", "{a:1}"],
      ["a comment", "[1 /* c */]"],
      ["a lone high surrogate", '"\\ud83d"'],
      ["a lone low surrogate", '"\\ude00x"'],
      ["a raw control character", '"a\u0001b"'],
      ["an unknown escape", '"\\x41"'],
      ["a short \\u escape", '"\\u12"'],
      ["trailing data", '{"a":1} x'],
      ["an empty document", ""],
      ["an unterminated string", '"abc'],
      ["invalid UTF-8", new Uint8Array([0x22, 0xc3, 0x28, 0x22])],
      ["an overlong UTF-8 encoding", new Uint8Array([0x22, 0xc0, 0xaf, 0x22])],
      ["a UTF-8 encoded surrogate", new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])],
      ["65 levels of nesting", "[".repeat(65) + "]".repeat(65)],
    ];
    for (const [what, doc] of refused) {
      it(`refuses ${what}`, async () => {
        const [status, body] = await run("json", doc);
        expect(status, body).to.equal(422);
        expect(body).to.match(/ at byte \d+$/);
      });
    }

    it("accepts 64 levels of nesting", async () => {
      const [status] = await run("json", "[".repeat(64) + "]".repeat(64));
      expect(status).to.equal(200);
    });

    it("re-serializes strings JSON.parse reads back exactly", async () => {
      const s = 'quote " backslash \\ newline \n tab \t nul-ish \u0002 é 😀';
      const [status, body] = await run("json", JSON.stringify({ s }));
      expect(status).to.equal(200);
      expect(JSON.parse(body)).to.deep.equal({ s });
    });
  });

  describe("base64", () => {
    it("decodes base64url without padding and encodes it back", async () => {
      for (let len = 0; len < 40; len++) {
        const bytes = new Uint8Array(Array.from({ length: len }, (_, i) => (i * 37 + len) & 255));
        const b64u = Buffer.from(bytes).toString("base64url");
        expect(await run("b64url", b64u)).to.deep.equal([200, Buffer.from(bytes).toString("hex")]);
        expect(await run("b64url-encode", bytes)).to.deep.equal([200, b64u]);
      }
    });

    it("decodes standard base64 with padding", async () => {
      expect(await run("b64", "aGk/Pz8+")).to.deep.equal([
        200,
        Buffer.from("aGk/Pz8+", "base64").toString("hex"),
      ]);
      expect(await run("b64", "YQ==")).to.deep.equal([200, "61"]);
      expect(await run("b64", "YWI=")).to.deep.equal([200, "6162"]);
    });

    for (const [what, kind, s] of [
      ["base64url padding", "b64url", "YQ=="],
      ["the standard alphabet in base64url", "b64url", "a+/b"],
      ["a length of 4n+1", "b64url", "abcde"],
      ["non-zero unused bits", "b64url", "YR"],
      ["whitespace", "b64url", "YW Jj"],
      ["base64 without padding", "b64", "YQ"],
      ["padding in the middle", "b64", "YQ==YQ=="],
      ["the url alphabet in base64", "b64", "a-_b"],
    ] as const) {
      it(`refuses ${what}`, async () => {
        expect((await run(kind, s))[0]).to.equal(422);
      });
    }
  });

  describe("percent-encoding and queries", () => {
    it("encodes all but the unreserved characters, as UTF-8", async () => {
      const s = "a b&c=d/é~_.-*'()!";
      expect(await run("pct-encode", s)).to.deep.equal([
        200,
        "a%20b%26c%3Dd%2F%C3%A9~_.-%2A%27%28%29%21",
      ]);
    });
    it("decodes %XX and + and leaves malformed escapes alone", async () => {
      expect(await run("pct-decode", "a+b%20c%C3%A9%zz%4")).to.deep.equal([200, "a b cé%zz%4"]);
    });
    it("finds a query parameter by its decoded name", async () => {
      const q = { query: "a=1&token=x%2Fy&b&token=second" };
      expect(await run("query-param", "", q, [["x-name", "token"]])).to.deep.equal([200, "x/y"]);
      expect(await run("query-param", "", q, [["x-name", "b"]])).to.deep.equal([200, ""]);
      expect((await run("query-param", "", q, [["x-name", "zz"]]))[0]).to.equal(404);
    });
    it("removes parameters by name and keeps the others' bytes", async () => {
      const q = { query: "a=1&tok%65n=x&b=%20&token=y&c" };
      expect(await run("query-without", "", q, [["x-name", "token,c"]])).to.deep.equal([
        200,
        "a=1&b=%20",
      ]);
    });
  });

  describe("failures", () => {
    it("Decision.fail fails the call (Extism error), whatever the metering", async () => {
      const res = await probe.call(
        "request",
        encodeInput(withHeaders([["x-sdk-test", "no-such-probe"]])),
      );
      expect(res.ok).to.equal(false);
      if (!res.ok) expect(res.message).to.contain("unknown probe no-such-probe");
    });

    // The SDK asks the host for fields (field_get, header_get): a malformed input is found by
    // the host when it decodes it for them, and the call fails there instead of being misread.
    it("a truncated input fails the call, and the instance is not trusted again", async () => {
      const h = await Harness.start("sdk-vectors");
      try {
        const full = encodeInput(request());
        const res = await h.call("request", full.slice(0, full.length - 3));
        expect(res.ok).to.equal(false);
        if (!res.ok) {
          expect(res.reason).to.equal("trap");
          expect(res.message).to.match(/truncated at byte \d+/);
        }
        // the host replaces a trapped instance; one that is called again refuses, it does not guess
        const again = await h.call("request", full);
        expect(again.ok).to.equal(false);
        if (!again.ok)
          expect(again.message).to.contain(
            "a previous call trapped: this plugin instance must be replaced",
          );
      } finally {
        await h.close();
      }
    });

    it("an input of another ABI version fails the call rather than being misread", async () => {
      const h = await Harness.start("sdk-vectors");
      try {
        const bytes = encodeInput(request()).slice();
        bytes[1] = 2;
        const res = await h.call("request", bytes);
        expect(res.ok).to.equal(false);
        if (!res.ok) expect(res.message).to.contain("ABI version 2");
      } finally {
        await h.close();
      }
    });

    it("a setup that traps fails that call and every later one", async () => {
      const h = await Harness.start("sdk-vectors", { trapInSetup: true });
      try {
        const first = await h.call("request", encodeInput(request()));
        expect(first.ok).to.equal(false);
        if (!first.ok) expect(first.reason).to.equal("trap");
        expect(h.host.logs.at(-1)?.message).to.match(/^abort: setup exploded at /);
        const second = await h.call("request", encodeInput(request()));
        expect(second.ok).to.equal(false);
        if (!second.ok) expect(second.message).to.contain("setup trapped");
      } finally {
        await h.close();
      }
    });

    it("a config that is not JSON fails every call of a plugin with a setup", async () => {
      const { PluginInstance } = await import("../../../proxy/plugins/sandbox.ts");
      const { compiled, TestHost, LIMITS } = await import("./helpers.ts");
      const inst = await PluginInstance.create(await compiled("sdk-vectors"), {
        configJson: "{not json",
        services: new TestHost(),
      });
      try {
        for (let i = 0; i < 2; i++) {
          const res = await inst.call("request", encodeInput(request()), LIMITS);
          expect(res.ok).to.equal(false);
          if (!res.ok) expect(res.message).to.contain("config is not valid JSON");
        }
      } finally {
        await inst.close();
      }
    });
  });

  describe("the per-call arena", () => {
    it("keeps memory flat over 3,000 calls that each allocate", async () => {
      const h = await Harness.start("sdk-vectors");
      try {
        const input = encodeInput(
          withHeaders([["x-big", "v".repeat(2000)]], { body: te.encode("x".repeat(5000)) }),
        );
        await h.call("request", input);
        const before = h.memoryBytes();
        for (let i = 0; i < 3000; i++) {
          const res = await h.call("request", input);
          if (!res.ok) throw new Error(res.message);
        }
        expect(h.memoryBytes()).to.equal(before);
      } finally {
        await h.close();
      }
    });

    it("hands out zeroed memory after a release (config parsed in setup survives)", async () => {
      const h = await Harness.start("sdk-vectors", {
        decision: { action: "reject", status: 418, headers: [], body: "teapot" },
      });
      try {
        for (let i = 0; i < 50; i++) {
          const d = rejectOf(await h.decide(withHeaders([["x-junk", String(i).repeat(i)]])));
          expect([d.status, text(d.body)]).to.deep.equal([418, "teapot"]);
        }
      } finally {
        await h.close();
      }
    });
  });

  it("the template plugin tags responses and refuses its blocked path", async () => {
    const h = await Harness.start("template", { blockedPath: "/admin", tag: "t1" });
    try {
      expect(await h.decide(request({ path: "/v1/users" }))).to.deep.equal({
        action: "modify",
        ops: [{ op: "setResponseHeader", name: "x-plugin", value: "t1" }],
      });
      const r = rejectOf(await h.decide(request({ path: "/admin/users" })));
      expect([r.status, text(r.body)]).to.deep.equal([403, "forbidden\n"]);
      expect((await h.decide(request({ path: "/administrator" }))).action).to.equal("modify");
    } finally {
      await h.close();
    }
  });

  it("modules import only rauta:host and extism:host/env, and the no-op is small", async () => {
    const all = await plugins();
    for (const p of all.values()) {
      const mods = new Set(
        WebAssembly.Module.imports(new WebAssembly.Module(fs.readFileSync(p.path))).map(
          i => i.module,
        ),
      );
      for (const m of mods)
        expect(["rauta:host", "extism:host/env"], `${p.name} imports ${m}`).to.include(m);
    }
    console.log(
      `      sizes: ${[...all.values()].map(p => `${p.name} ${(p.bytes / 1024).toFixed(1)} KiB`).join(", ")}`,
    );
    expect(all.get("sdk-noop")!.bytes).to.be.below(8 * 1024);
  });
});
