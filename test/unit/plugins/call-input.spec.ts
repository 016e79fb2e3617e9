// A call's input as a guest reads it: single values by host call (head_info, field_get,
// header_get, meta_get) with nothing encoded, or the whole ABI buffer, encoded only when a guest
// asks for it.
import { expect } from "chai";
import { CallInput } from "../../../proxy/plugins/call-input.ts";
import { encodeInput } from "../../../proxy/plugins/abi.ts";
import { Harness, plugins, request } from "./helpers.ts";
import { LIMITS } from "./helpers.ts";

const head = request({
  phase: "response",
  status: 404,
  path: "/orders/7",
  requestHeaders: [
    ["host", "api.example.com"],
    ["x-twice", "first"],
    ["x-twice", "second"],
  ],
  responseHeaders: [["content-type", "text/plain"]],
  metadata: [["jwt.sub", "alice"]],
  body: new TextEncoder().encode("hi"),
});

describe("plugin call input (lazy values, buffer on demand)", function () {
  this.timeout(60_000);
  before(() => plugins());

  it("answers fields, the first value of a header in any case, metadata and the head's info", () => {
    const c = CallInput.of(head);
    expect(c.field(3)).to.equal("/orders/7");
    expect(c.field(7)).to.equal(undefined);
    expect(c.header(0, "X-Twice")).to.equal("first");
    expect(c.header(1, "content-type")).to.equal("text/plain");
    expect(c.header(0, "absent")).to.equal(undefined);
    expect(c.meta("jwt.sub")).to.equal("alice");
    expect(c.meta("JWT.SUB")).to.equal(undefined);
    // phase 1, flags 1 (a body), status 404
    expect(c.info()).to.equal(1 | (1 << 8) | (404 << 16));
    expect(c.encodedYet).to.equal(false);
  });

  it("encodes the buffer once, byte for byte what encodeInput makes", () => {
    const c = CallInput.of(head);
    expect(c.bytes()).to.deep.equal(encodeInput(head));
    expect(c.bytes()).to.equal(c.bytes());
  });

  it("a plugin that reads one header leaves the buffer unencoded; one that reads them all encodes it", async () => {
    const cors = await Harness.start("cors", { allowOrigins: ["https://app.example.com"] });
    const vectors = await Harness.start("sdk-vectors");
    try {
      const req = request({
        requestHeaders: [
          ["host", "api.example.com"],
          ["origin", "https://app.example.com"],
        ],
      });
      const lazy = CallInput.of(req);
      const r = await cors.instance.call("request", lazy, LIMITS);
      expect(r.ok).to.equal(true);
      expect(lazy.encodedYet).to.equal(false);
      const whole = CallInput.of(req);
      expect((await vectors.instance.call("request", whole, LIMITS)).ok).to.equal(true);
      expect(whole.encodedYet).to.equal(true);
    } finally {
      await cors.close();
      await vectors.close();
    }
  });
});
