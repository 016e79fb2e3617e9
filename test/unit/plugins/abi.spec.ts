// The plugin ABI's encodings (plugins-sdk/ABI.md) as the proxy speaks them, and the shared test
// vectors every SDK is checked against.
import { expect } from "chai";
import fc from "fast-check";
import fs from "node:fs";
import {
  AbiError,
  decodeDecision,
  decodeInput,
  encodeDecision,
  encodeInput,
} from "../../../proxy/plugins/abi.ts";
import type { Decision, PluginInput } from "../../../proxy/plugins/abi.ts";
import { VECTORS_PATH, vectorsJson, inputs, decisions } from "../../../hack/plugins/vectors.ts";

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));

describe("plugin ABI v1", () => {
  it("the committed vectors are what the codec produces (run node hack/plugins/vectors.ts)", () => {
    expect(fs.readFileSync(VECTORS_PATH, "utf8")).to.equal(vectorsJson());
  });

  it("round-trips every input and decision vector", () => {
    for (const { input } of inputs) expect(decodeInput(encodeInput(input))).to.deep.equal(input);
    for (const { decision } of decisions)
      expect(decodeDecision(encodeDecision(decision), "request")).to.deep.equal(
        decision.action === "modify" || decision.action === "reject"
          ? decision
          : { action: "continue" },
      );
  });

  it("empty output is CONTINUE", () => {
    expect(decodeDecision(new Uint8Array(0), "request")).to.deep.equal({ action: "continue" });
  });

  const refused: Array<[string, string, RegExp]> = [
    ["wrong magic", "00010100000000", /magic/],
    ["future version", "5202", /ABI version 2/],
    ["unknown action", "520109", /unknown action 9/],
    ["truncated reject", "52010191", /truncated/],
    ["status out of range", "5201015802000000000000000000", /outside 100-599/],
    ["trailing bytes", "520100ff", /trailing/],
    ["unknown op", "520102010000000b", /unknown op 11/],
    // SET_REQUEST_HEADER "a b" → invalid name
    ["invalid header name", "5201020100000001030000006120620100000078", /invalid header name/],
    // SET_REQUEST_HEADER "x" "a\r\nb"
    ["CRLF in a value", "520102010000000101000000780400000061" + "0d0a62", /CR, LF or NUL/],
    // SET_PATH "nope"
    ["relative path", "5201020100000004040000006e6f7065", /must start with \//],
    // a count that the buffer cannot hold is refused before allocating
    ["huge pair count", "520101c800ffffff7f", /truncated/],
  ];
  for (const [what, hex, err] of refused) {
    it(`refuses a decision with ${what}`, () => {
      expect(() => decodeDecision(bytes(hex), "request")).to.throw(AbiError, err);
    });
  }

  it("refuses request ops in on_response", () => {
    const d: Decision = { action: "modify", ops: [{ op: "setPath", path: "/x" }] };
    expect(() => decodeDecision(encodeDecision(d), "response")).to.throw(
      AbiError,
      /in on_response/,
    );
  });

  it("never throws anything but AbiError on random output (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (junk, prefixed) => {
        const buf = prefixed ? new Uint8Array([0x52, 1, ...junk]) : junk;
        try {
          decodeDecision(buf, "request");
        } catch (err) {
          expect(err).to.be.instanceOf(AbiError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips arbitrary inputs (property)", () => {
    const pairs = fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 5 });
    fc.assert(
      fc.property(
        fc.record({
          phase: fc.constantFrom("request" as const, "response" as const),
          method: fc.string(),
          scheme: fc.constantFrom("http", "https"),
          authority: fc.string(),
          path: fc.string(),
          query: fc.string(),
          client: fc.string(),
          route: fc.string(),
          status: fc.integer({ min: 0, max: 599 }),
          requestHeaders: pairs,
          responseHeaders: pairs,
          metadata: pairs,
        }),
        (i: PluginInput) => {
          // lone surrogates do not survive UTF-8; the proxy's strings come from valid HTTP
          const clean = JSON.parse(
            JSON.stringify(i).replace(/\\ud[89a-f][0-9a-f]{2}/gi, "?"),
          ) as PluginInput;
          expect(decodeInput(encodeInput(clean))).to.deep.equal(clean);
        },
      ),
      { numRuns: 300 },
    );
  });
});
