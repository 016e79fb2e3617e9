import { expect } from "chai";
import fc from "fast-check";
import {
  canonicalJson,
  hashConfigBody,
  sealConfig,
  CompiledConfig,
} from "../../../proxy/config/index.ts";

// The same value with its object keys inserted in another (reversed) order.
function reordered(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(reordered);
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reordered(v)]),
  );
}

describe("config hashing", () => {
  it("canonicalJson sorts keys at every level and keeps array order", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }, null], e: undefined })).to.equal(
      '{"a":[{"c":3,"d":2},null],"b":1}',
    );
    fc.assert(
      fc.property(fc.jsonValue(), v => {
        expect(canonicalJson(reordered(v))).to.equal(canonicalJson(v));
        expect(JSON.parse(canonicalJson(v))).to.deep.equal(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 2000 },
    );
  });

  it("hashes the same body to the same hash regardless of key order", () => {
    const body = {
      apiVersion: "rauta.io/v1alpha1" as const,
      listeners: [],
      routes: [],
      clusters: [],
      plugins: [],
    };
    const reordered = {
      plugins: [],
      clusters: [],
      routes: [],
      listeners: [],
      apiVersion: "rauta.io/v1alpha1" as const,
    };
    expect(hashConfigBody(reordered)).to.equal(hashConfigBody(body));
    const sealed = sealConfig(body, 7);
    expect(CompiledConfig.parse(sealed).generation).to.equal(7);
    expect(sealed.hash).to.equal(hashConfigBody(body));
  });
});
