// The in-cluster proxy's reader of configMap plugin sources (ModuleStoreOptions.readConfigMap).
// The controller copies every module into a ConfigMap of the proxy's own namespace and points
// the config there, so this reads that namespace only: the proxy's RBAC stays "read ConfigMaps
// in my namespace", and a config naming another namespace is refused rather than attempted.
// With worker processes the primary reads them and hands the workers the modules inline.
import { K8s, kind } from "kubernetes-fluent-client";
import { bodyOf, hashConfigBody, sealConfig } from "../config/hash.ts";
import type { CompiledConfig, CompiledConfigBody } from "../config/schema.ts";
import { ModuleError } from "../plugins/modules.ts";

export interface ModuleConfigMap {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** undefined when the ConfigMap does not exist */
export type GetConfigMap = (
  namespace: string,
  name: string,
) => Promise<ModuleConfigMap | undefined>;

async function getFromApi(namespace: string, name: string): Promise<ModuleConfigMap | undefined> {
  try {
    return await K8s(kind.ConfigMap).InNamespace(namespace).Get(name);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}

export function configMapModuleReader(
  namespace: string,
  get: GetConfigMap = getFromApi,
): (namespace: string, name: string, key: string) => Promise<Uint8Array | null> {
  return async (from, name, key) => {
    if (from !== namespace)
      throw new ModuleError(
        "SourceNotFound",
        `ConfigMap ${from}/${name}: this proxy reads plugin modules only from its own namespace ${namespace}, where the controller copies them`,
      );
    const map = await get(from, name);
    if (map === undefined)
      throw new ModuleError("SourceNotFound", `ConfigMap ${from}/${name} does not exist`);
    // binaryData holds bytes; data can only hold the module as base64 text
    const encoded = map.binaryData?.[key] ?? map.data?.[key]?.replace(/\s+/g, "");
    return encoded === undefined ? null : new Uint8Array(Buffer.from(encoded, "base64"));
  };
}

export type ModuleReader = ReturnType<typeof configMapModuleReader>;

interface SourcedPlugin {
  id?: string;
  digest?: string;
  source?: { configMap?: { namespace: string; name: string; key: string } };
}

/**
 * For `rauta proxy --workers N`: the worker processes never talk to Kubernetes, so before a
 * config goes to them every configMap plugin source is replaced by the module itself (inline;
 * `digest` is kept, so a worker still verifies the bytes) and the config is resealed at the
 * same generation. A module that cannot be read stays a configMap source, which the workers
 * then report as SourceNotFound, and its error is returned in `problems`. Anything that is not
 * a sealed config with such sources (hash included: a bad one is left for the pool to refuse)
 * comes back unchanged. Modules are read once per (copy, digest).
 */
export class ConfigMapSourceInliner {
  private readonly read: ModuleReader;
  private readonly modules = new Map<string, string>();

  constructor(read: ModuleReader) {
    this.read = read;
  }

  async inline(config: unknown): Promise<{ config: unknown; problems: string[] }> {
    const plugins = (config as { plugins?: unknown } | null)?.plugins;
    if (
      !Array.isArray(plugins) ||
      !plugins.some(p => (p as SourcedPlugin | null)?.source?.configMap !== undefined)
    )
      return { config, problems: [] };
    const sealed = config as CompiledConfig;
    if (hashConfigBody(bodyOf(sealed)) !== sealed.hash) return { config, problems: [] };
    const problems: string[] = [];
    const used = new Set<string>();
    const next = await Promise.all(
      (plugins as SourcedPlugin[]).map(async plugin => {
        const ref = plugin?.source?.configMap;
        if (ref === undefined) return plugin;
        const key = `${ref.namespace}/${ref.name}/${ref.key}@${plugin.digest ?? ""}`;
        let inline = this.modules.get(key);
        if (inline === undefined) {
          try {
            const bytes = await this.read(ref.namespace, ref.name, ref.key);
            if (bytes === null)
              throw new Error(`ConfigMap ${ref.namespace}/${ref.name} has no key ${ref.key}`);
            inline = Buffer.from(bytes).toString("base64");
          } catch (error) {
            problems.push(`plugin ${plugin.id}: ${(error as Error).message}`);
            return plugin;
          }
          // without a digest the copy's content is not pinned: read it again next time
          if (plugin.digest !== undefined) this.modules.set(key, inline);
        }
        used.add(key);
        return { ...plugin, source: { inline } };
      }),
    );
    for (const key of [...this.modules.keys()]) if (!used.has(key)) this.modules.delete(key);
    const body = { ...bodyOf(sealed), plugins: next } as CompiledConfigBody;
    return { config: sealConfig(body, sealed.generation), problems };
  }
}
