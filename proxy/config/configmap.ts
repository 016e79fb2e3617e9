// How a CompiledConfig travels through ConfigMaps (owned here, by its consumer, like the rest of
// the contract). A ConfigMap holds at most 1 MiB, so:
//   - a config whose JSON fits in INLINE_LIMIT goes inline: ConfigMap <name> carries
//     manifest.json + config.json;
//   - a larger one is gzip'd and split into shards of at most SHARD_LIMIT bytes, each in its own
//     ConfigMap named after the config hash (so writing a new generation never touches the shards
//     a proxy may still be reading), and <name> carries only manifest.json listing the shards and
//     their sha256. A reader swaps only when every shard of the manifest is present and verified.
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { z } from "zod";
import { hashConfigBody, bodyOf } from "./hash.ts";
import { CompiledConfig } from "./schema.ts";

export const DEFAULT_CONFIG_MAP = "rauta-config";
export const INLINE_LIMIT = 900 * 1024;
export const SHARD_LIMIT = 900 * 1024;
export const GENERATION_ANNOTATION = "rauta.io/config-generation";
export const HASH_ANNOTATION = "rauta.io/config-hash";
export const PART_OF_LABEL = "rauta.io/config";

export interface ConfigMapData {
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export const Manifest = z
  .object({
    apiVersion: z.literal("rauta.io/v1alpha1"),
    generation: z.number().int().min(0),
    hash: z.string(),
    encoding: z.enum(["inline", "gzip-shards"]),
    shards: z.array(z.object({ name: z.string(), sha256: z.string() }).strict()),
  })
  .strict();
export type Manifest = z.infer<typeof Manifest>;

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

export function shardName(base: string, hash: string, index: number): string {
  return `${base}-${hash.replace(/^sha256:/, "").slice(0, 16)}-${index}`;
}

export function encodeConfigMaps(
  config: CompiledConfig,
  target: { namespace: string; name?: string; inlineLimit?: number; shardLimit?: number },
): { manifest: ConfigMapData; shards: ConfigMapData[] } {
  const base = target.name ?? DEFAULT_CONFIG_MAP;
  const meta = (name: string) => ({
    name,
    namespace: target.namespace,
    labels: { [PART_OF_LABEL]: base },
    annotations: {
      [GENERATION_ANNOTATION]: String(config.generation),
      [HASH_ANNOTATION]: config.hash,
    },
  });
  const json = JSON.stringify(config);
  if (Buffer.byteLength(json) <= (target.inlineLimit ?? INLINE_LIMIT)) {
    const manifest: Manifest = {
      apiVersion: "rauta.io/v1alpha1",
      generation: config.generation,
      hash: config.hash,
      encoding: "inline",
      shards: [],
    };
    return {
      manifest: {
        metadata: meta(base),
        data: { "manifest.json": JSON.stringify(manifest), "config.json": json },
      },
      shards: [],
    };
  }
  const gzipped = gzipSync(json, { level: 9 });
  const limit = target.shardLimit ?? SHARD_LIMIT;
  const shards: ConfigMapData[] = [];
  for (let offset = 0, index = 0; offset < gzipped.length; offset += limit, index++) {
    const chunk = gzipped.subarray(offset, offset + limit);
    shards.push({
      metadata: meta(shardName(base, config.hash, index)),
      binaryData: { "config.gz.part": chunk.toString("base64") },
    });
  }
  const manifest: Manifest = {
    apiVersion: "rauta.io/v1alpha1",
    generation: config.generation,
    hash: config.hash,
    encoding: "gzip-shards",
    shards: shards.map(s => ({
      name: s.metadata.name,
      sha256: sha256(Buffer.from(s.binaryData!["config.gz.part"]!, "base64")),
    })),
  };
  return {
    manifest: { metadata: meta(base), data: { "manifest.json": JSON.stringify(manifest) } },
    shards,
  };
}

export class ConfigDecodeError extends Error {}

type ConfigMapLike = {
  data?: Record<string, string> | undefined;
  binaryData?: Record<string, string> | undefined;
};

// Rebuilds and verifies a config: every shard's sha256, then the config hash recomputed from its
// body, then the schema. `shard` returns undefined for a shard that is not (yet) there.
export function decodeConfigMaps(
  manifestMap: ConfigMapLike,
  shard: (name: string) => ConfigMapLike | undefined,
): CompiledConfig {
  const rawManifest = manifestMap.data?.["manifest.json"];
  if (!rawManifest) throw new ConfigDecodeError("manifest.json is missing");
  const manifest = Manifest.parse(JSON.parse(rawManifest));
  let json: string;
  if (manifest.encoding === "inline") {
    const inline = manifestMap.data?.["config.json"];
    if (!inline) throw new ConfigDecodeError("config.json is missing from an inline config");
    json = inline;
  } else {
    const parts = manifest.shards.map(({ name, sha256: expected }) => {
      const encoded = shard(name)?.binaryData?.["config.gz.part"];
      if (encoded === undefined) throw new ConfigDecodeError(`shard ${name} is not present yet`);
      const bytes = Buffer.from(encoded, "base64");
      if (sha256(bytes) !== expected)
        throw new ConfigDecodeError(
          `shard ${name} does not match its sha256 (a newer generation is being written)`,
        );
      return bytes;
    });
    json = gunzipSync(Buffer.concat(parts)).toString("utf8");
  }
  const config = CompiledConfig.parse(JSON.parse(json));
  if (config.hash !== manifest.hash || hashConfigBody(bodyOf(config)) !== config.hash) {
    throw new ConfigDecodeError(`config content does not match hash ${manifest.hash}`);
  }
  return config;
}
