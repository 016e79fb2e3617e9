// The proxy's heartbeat Lease carries the plugins that did not load: compact JSON in one
// annotation, bounded in size however many plugins fail, read back by the controller only when
// it is well-formed.
import { expect } from "chai";
import {
  LOADED_GENERATION_ANNOTATION,
  PLUGIN_PROBLEMS_ANNOTATION,
  PLUGIN_PROBLEMS_MAX_BYTES,
  decodePluginProblems,
  encodePluginProblems,
} from "../../../proxy/config/index.ts";
import type { PluginLoadProblem } from "../../../proxy/config/index.ts";
import { LeaseReporter } from "../../../proxy/kubernetes/lease-reporter.ts";

const problem = (plugin: string, message = "the module does not compile"): PluginLoadProblem => ({
  plugin,
  reason: "InvalidModule",
  message,
});

describe("heartbeat plugin problems", () => {
  it("round-trips a report, problems sorted by plugin", () => {
    const encoded = encodePluginProblems({
      generation: 7,
      problems: [
        problem("shop/b"),
        { ...problem("shop/a"), reason: "DigestMismatch", serving: `sha256:${"1".repeat(64)}` },
      ],
    });
    expect(encoded).to.equal(
      `{"generation":7,"problems":[{"plugin":"shop/a","reason":"DigestMismatch","message":"the module does not compile","serving":"sha256:${"1".repeat(64)}"},{"plugin":"shop/b","reason":"InvalidModule","message":"the module does not compile"}]}`,
    );
    expect(decodePluginProblems(encoded)).to.deep.equal({
      generation: 7,
      problems: [
        {
          plugin: "shop/a",
          reason: "DigestMismatch",
          message: "the module does not compile",
          serving: `sha256:${"1".repeat(64)}`,
        },
        problem("shop/b"),
      ],
    });
  });

  it("reports nothing when every plugin loaded (the annotation is left out)", () => {
    expect(encodePluginProblems({ generation: 3, problems: [] })).to.equal(undefined);
  });

  it("stays within its size bound: long messages are clipped, what does not fit is counted", () => {
    const many = Array.from({ length: 200 }, (_, i) =>
      problem(`ns-${String(i).padStart(3, "0")}/plugin`, "x".repeat(5000)),
    );
    const encoded = encodePluginProblems({ generation: 9, problems: many })!;
    expect(Buffer.byteLength(encoded)).to.be.at.most(PLUGIN_PROBLEMS_MAX_BYTES);
    const decoded = decodePluginProblems(encoded)!;
    expect(decoded.problems.length).to.be.greaterThan(0);
    expect(decoded.problems.length + decoded.omitted!).to.equal(200);
    expect(decoded.problems[0]!.message).to.have.length(400);
    expect(decoded.problems[0]!.message.endsWith("…")).to.equal(true);
    // the first ones by plugin id are the ones kept
    expect(decoded.problems[0]!.plugin).to.equal("ns-000/plugin");
  });

  it("holds to a smaller bound when given one", () => {
    const encoded = encodePluginProblems(
      { generation: 1, problems: [problem("a/a"), problem("b/b"), problem("c/c")] },
      200,
    )!;
    expect(Buffer.byteLength(encoded)).to.be.at.most(200);
    expect(decodePluginProblems(encoded)!.omitted).to.be.greaterThan(0);
  });

  it("ignores an annotation that is not a report", () => {
    expect(decodePluginProblems(undefined)).to.equal(undefined);
    expect(decodePluginProblems("")).to.equal(undefined);
    expect(decodePluginProblems("{not json")).to.equal(undefined);
    expect(decodePluginProblems('{"generation":-1,"problems":[]}')).to.equal(undefined);
    expect(decodePluginProblems('{"generation":1,"problems":[{"plugin":"a/b"}]}')).to.equal(
      undefined,
    );
  });

  it("is written on the proxy's Lease next to the generation it serves", () => {
    const reporter = new LeaseReporter({
      namespace: "rauta-system",
      identity: "rauta-proxy-abc",
      generation: () => 12,
      pluginProblems: () => ({ generation: 12, problems: [problem("shop/geo")] }),
    });
    const lease = reporter.lease(new Date("2026-01-01T00:00:00Z"));
    expect(lease.metadata?.annotations).to.deep.equal({
      [LOADED_GENERATION_ANNOTATION]: "12",
      [PLUGIN_PROBLEMS_ANNOTATION]:
        '{"generation":12,"problems":[{"plugin":"shop/geo","reason":"InvalidModule","message":"the module does not compile"}]}',
    });
    const clean = new LeaseReporter({
      namespace: "rauta-system",
      identity: "rauta-proxy-abc",
      generation: () => 13,
      pluginProblems: () => ({ generation: 13, problems: [] }),
    });
    expect(Object.keys(clean.lease().metadata?.annotations ?? {})).to.deep.equal([
      LOADED_GENERATION_ANNOTATION,
    ]);
  });
});
