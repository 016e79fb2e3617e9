import { expect } from "chai";
import { compile } from "../../../capabilities/compiler/index.ts";
import { syntheticSnapshot } from "../../../hack/bench/compile.ts";
import type { ConfigMapData } from "../../../proxy/config/index.ts";
import {
  ConfigDecodeError,
  decodeConfigMaps,
  encodeConfigMaps,
} from "../../../proxy/config/index.ts";

describe("config ConfigMap codec", () => {
  const small = compile(syntheticSnapshot(3), { generation: 4 }).config;
  const large = compile(syntheticSnapshot(200), { generation: 9 }).config;
  const lookup = (shards: ConfigMapData[]) => (name: string) =>
    shards.find(s => s.metadata.name === name);

  it("keeps a small config inline in one ConfigMap, annotated with generation and hash", () => {
    const { manifest, shards } = encodeConfigMaps(small, { namespace: "rauta-system" });
    expect(shards).to.have.length(0);
    expect(manifest.metadata.name).to.equal("rauta-config");
    expect(manifest.metadata.annotations).to.deep.equal({
      "rauta.io/config-generation": "4",
      "rauta.io/config-hash": small.hash,
    });
    expect(decodeConfigMaps(manifest, () => undefined)).to.deep.equal(small);
  });

  it("gzips and shards a large config, each shard under the limit, and rebuilds it exactly", () => {
    const { manifest, shards } = encodeConfigMaps(large, {
      namespace: "ns",
      inlineLimit: 10_000,
      shardLimit: 4_096,
    });
    expect(shards.length).to.be.greaterThan(2);
    for (const shard of shards) {
      expect(Buffer.from(shard.binaryData!["config.gz.part"]!, "base64").length).to.be.at.most(
        4_096,
      );
      expect(shard.metadata.name).to.match(
        new RegExp(`^rauta-config-${large.hash.slice(7, 23)}-\\d+$`),
      );
    }
    expect(manifest.data).to.not.have.property("config.json");
    expect(decodeConfigMaps(manifest, lookup(shards))).to.deep.equal(large);
  });

  it("refuses a config until every shard is present and intact", () => {
    const { manifest, shards } = encodeConfigMaps(large, {
      namespace: "ns",
      inlineLimit: 10_000,
      shardLimit: 4_096,
    });
    expect(() => decodeConfigMaps(manifest, lookup(shards.slice(1)))).to.throw(
      ConfigDecodeError,
      /is not present yet/,
    );
    const tampered = structuredClone(shards);
    tampered[1]!.binaryData!["config.gz.part"] = Buffer.from("not the shard").toString("base64");
    expect(() => decodeConfigMaps(manifest, lookup(tampered))).to.throw(
      ConfigDecodeError,
      /does not match its sha256/,
    );
  });

  it("refuses an inline config whose content does not match its hash", () => {
    const { manifest } = encodeConfigMaps(small, { namespace: "ns" });
    const config = JSON.parse(manifest.data!["config.json"]!);
    config.routes = [];
    const forged = { data: { ...manifest.data, "config.json": JSON.stringify(config) } };
    expect(() => decodeConfigMaps(forged, () => undefined)).to.throw(
      ConfigDecodeError,
      /does not match hash/,
    );
  });
});
