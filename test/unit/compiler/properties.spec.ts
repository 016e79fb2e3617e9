// Properties of compile() over random schema-valid snapshots: it never throws, its output does
// not depend on input order, and the hash changes exactly when the config does.
import { expect } from "chai";
import fc from "fast-check";
import { compile } from "../../../capabilities/compiler/index.ts";
import type { Snapshot } from "../../../capabilities/compiler/index.ts";
import { snapshotArbitrary as snapshot } from "../../helpers/arbitraries.ts";
import { bodyOf, canonicalJson } from "../../../proxy/config/index.ts";

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  let state = seed;
  for (let i = result.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const j = state % (i + 1);
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}

function permute(s: Snapshot, seed: number): Snapshot {
  return Object.fromEntries(
    Object.entries(s).map(([k, v]) => [k, shuffled(v as unknown[], seed)]),
  ) as unknown as Snapshot;
}

const RUNS = { numRuns: 150 };

describe("compiler properties", () => {
  it("never throws on schema-valid input, and always yields a valid config", () => {
    fc.assert(
      fc.property(snapshot, s => {
        const { config, statuses } = compile(s);
        expect(config.hash).to.match(/^sha256:[0-9a-f]{64}$/);
        expect(statuses.length).to.be.greaterThan(0);
      }),
      RUNS,
    );
  });

  it("gives identical bytes and hash whatever the input order", () => {
    fc.assert(
      fc.property(snapshot, fc.integer({ min: 1, max: 1_000_000 }), (s, seed) => {
        const a = compile(s);
        const b = compile(permute(s, seed));
        expect(JSON.stringify(b)).to.equal(JSON.stringify(a));
      }),
      RUNS,
    );
  });

  it("changes the hash exactly when the config changes", () => {
    fc.assert(
      fc.property(snapshot, snapshot, (s1, s2) => {
        const [a, b] = [compile(s1).config, compile(s2).config];
        const sameBody = canonicalJson(bodyOf(a)) === canonicalJson(bodyOf(b));
        expect(a.hash === b.hash).to.equal(sameBody);
      }),
      RUNS,
    );
  });

  it("does not put the generation into the hash", () => {
    fc.assert(
      fc.property(snapshot, fc.integer({ min: 0, max: 1000 }), (s, generation) => {
        expect(compile(s, { generation }).config.hash).to.equal(compile(s).config.hash);
      }),
      { numRuns: 30 },
    );
  });
});
