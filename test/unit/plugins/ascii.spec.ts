// The byte → string helpers on the plugin call path: same answers as the regex-and-lowercase
// checks they replace, whatever the bytes.
import { expect } from "chai";
import fc from "fast-check";
import { asciiAt, fieldValueAt, headerNameAt } from "../../../proxy/plugins/ascii.ts";
import { decodeDecision, encodeDecision } from "../../../proxy/plugins/abi.ts";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const at = (f: (b: Uint8Array, s: number, e: number) => unknown, s: string) => {
  // inside a larger buffer, as in guest memory or a decision
  const b = enc(`<<${s}>>`);
  return f(b, 2, b.length - 2);
};

describe("plugin bytes to strings", () => {
  it("a header name: lowercase as is, uppercase lowered, anything else refused", () => {
    expect(at(headerNameAt, "x-bench")).to.equal("x-bench");
    expect(at(headerNameAt, "Access-Control-Allow-Origin")).to.equal("access-control-allow-origin");
    for (const bad of ["", "a b", "a:b", "é", "x\r", "x\0"])
      expect(at(headerNameAt, bad), JSON.stringify(bad)).to.equal(null);
  });

  it("an interned name is the same string every time, and never another name's", () => {
    const a = at(headerNameAt, "ratelimit-limit");
    expect(at(headerNameAt, "ratelimit-limit")).to.equal(a);
    // thousands of names through a 512-entry table: each one still comes back as itself
    for (let i = 0; i < 3000; i++) expect(at(headerNameAt, `x-n${i}`)).to.equal(`x-n${i}`);
  });

  it("agrees with the token rule on any bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), bytes => {
        const s = Buffer.from(bytes).toString("latin1");
        const got = headerNameAt(bytes, 0, bytes.length);
        expect(got).to.equal(TOKEN.test(s) ? s.toLowerCase() : null);
      }),
      { numRuns: 3000 },
    );
  });

  it("a field value: CR, LF and NUL refused, non-ASCII left to the UTF-8 decoder", () => {
    expect(at(fieldValueAt, "https://app.bench")).to.equal("https://app.bench");
    expect(at(fieldValueAt, "")).to.equal("");
    for (const bad of ["a\rb", "a\nb", "a\0b"]) expect(at(fieldValueAt, bad)).to.equal("cr");
    expect(fieldValueAt(new Uint8Array([0x61, 0xc3, 0xa9]), 0, 3)).to.equal(null);
    expect(asciiAt(new Uint8Array([0x61, 0x80]), 0, 2)).to.equal(null);
    expect(asciiAt(enc("abc"), 1, 3)).to.equal("bc");
  });

  it("decisions decode names and values as before: lowered names, UTF-8 values", () => {
    const d = decodeDecision(
      encodeDecision({
        action: "modify",
        ops: [
          { op: "setResponseHeader", name: "X-Greeting", value: "grüß dich" },
          { op: "removeRequestHeader", name: "Authorization" },
        ],
      }),
      "request",
    );
    expect(d).to.deep.equal({
      action: "modify",
      ops: [
        { op: "setResponseHeader", name: "x-greeting", value: "grüß dich" },
        { op: "removeRequestHeader", name: "authorization" },
      ],
    });
  });
});
