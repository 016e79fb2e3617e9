import { expect } from "chai";
import { compile } from "../../../capabilities/compiler/index.ts";
import { syntheticSnapshot } from "../../../hack/bench/compile.ts";
import { encodeConfigMaps } from "../../../proxy/config/index.ts";
import { ConfigAssembler } from "../../../proxy/kubernetes/config-assembler.ts";

describe("ConfigAssembler (ConfigMap events → verified configs)", () => {
  const encode = (routes: number, generation: number) =>
    encodeConfigMaps(compile(syntheticSnapshot(routes), { generation }).config, {
      namespace: "rauta-system",
      inlineLimit: 8_000,
      shardLimit: 3_000,
    });

  it("emits a sharded config only once the manifest and all its shards have arrived", () => {
    const assembler = new ConfigAssembler("rauta-config");
    const { manifest, shards } = encode(60, 1);
    expect(shards.length).to.be.greaterThan(1);
    // Manifest first (out of order): waits for shards.
    expect(assembler.apply({ type: "upsert", object: manifest }).kind).to.equal("waiting");
    for (const shard of shards.slice(0, -1))
      expect(assembler.apply({ type: "upsert", object: shard }).kind).to.equal("waiting");
    const done = assembler.apply({ type: "upsert", object: shards.at(-1)! });
    expect(done.kind).to.equal("config");
    expect(done.kind === "config" && done.config.generation).to.equal(1);
    // The same state replayed (relist) is not a new config.
    expect(assembler.apply({ type: "upsert", object: manifest }).kind).to.equal("unchanged");
  });

  it("moves to the next generation when its shards and manifest arrive, ignoring deleted old shards", () => {
    const assembler = new ConfigAssembler("rauta-config");
    const first = encode(60, 1);
    for (const map of [...first.shards, first.manifest])
      assembler.apply({ type: "upsert", object: map });
    const second = encode(61, 2);
    for (const shard of second.shards)
      expect(assembler.apply({ type: "upsert", object: shard }).kind).to.equal("unchanged");
    const next = assembler.apply({ type: "upsert", object: second.manifest });
    expect(next.kind === "config" && next.config.generation).to.equal(2);
    for (const shard of first.shards)
      expect(assembler.apply({ type: "delete", object: shard }).kind).to.equal("unchanged");
  });

  it("reports an invalid config and keeps the last good one", () => {
    const assembler = new ConfigAssembler("rauta-config");
    const { manifest } = encode(2, 1);
    expect(assembler.apply({ type: "upsert", object: manifest }).kind).to.equal("config");
    const broken = { ...manifest, data: { ...manifest.data, "config.json": "{not json" } };
    const result = assembler.apply({ type: "upsert", object: broken });
    expect(result.kind).to.equal("invalid");
  });
});
