// The reconciler's plugin-module step (I/O, before compile): the proxies read plugin modules only
// from their own namespace, so the module a RautaPlugin's configMap source names (in the
// plugin's namespace) is read here, hashed, and copied into a ConfigMap the controller owns in
// the proxies' namespace, named after its digest. The compiler gets the digests and copy names
// in the snapshot (Snapshot.pluginModules) and points the config at the copies. Copies no
// RautaPlugin uses any more are deleted once the config no longer points at them.
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { ConfigMapModuleRef, PluginModule } from "../compiler/index.ts";

/** On every copy; its value is the first 16 hex of the digest (label values stop at 63). */
export const PLUGIN_MODULE_LABEL = "rauta.io/plugin-module";
export const PLUGIN_DIGEST_ANNOTATION = "rauta.io/digest";
export const PLUGIN_MODULE_KEY = "plugin.wasm";
// The API server refuses a ConfigMap whose data and binaryData exceed 1 MiB together.
export const CONFIGMAP_MODULE_LIMIT = 1024 * 1024 - 1024;
// As the proxy's ModuleStore: a gzip'd module may unpack to at most this much.
const MAX_MODULE_BYTES = 32 * 1024 * 1024;
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

export interface ConfigMapObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export type ModuleCopy = ConfigMapObject & { metadata: { name: string; namespace: string } };
type ModuleProblem = Extract<PluginModule, { problem: object }>["problem"];

export function pluginModuleCopyName(digest: string): string {
  return `rauta-plugin-${digest.replace(/^sha256:/, "").slice(0, 16)}`;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

const isGzip = (b: Uint8Array) => b[0] === 0x1f && b[1] === 0x8b;

function moduleBytes(
  map: ConfigMapObject | undefined,
  ref: ConfigMapModuleRef,
): Uint8Array | ModuleProblem {
  const where = `ConfigMap ${ref.namespace}/${ref.name}`;
  if (!map) return { reason: "SourceNotFound", message: `${where} does not exist` };
  const binary = map.binaryData?.[ref.key];
  if (binary !== undefined) return Buffer.from(binary, "base64");
  const text = map.data?.[ref.key];
  if (text === undefined) {
    const keys = [...Object.keys(map.binaryData ?? {}), ...Object.keys(map.data ?? {})].sort();
    return {
      reason: "SourceNotFound",
      message: `${where} has no key ${ref.key} (its keys: ${keys.join(", ") || "none"}); set spec.source.configMap.key`,
    };
  }
  // A module is binary: in data it can only be base64 text.
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text))
    return {
      reason: "InvalidSource",
      message: `${where} key ${ref.key} is text, not a module: put the .wasm file in binaryData (kubectl create configmap --from-file=${ref.key}=plugin.wasm) or base64 in data`,
    };
  return Buffer.from(text.replace(/\s+/g, ""), "base64");
}

/**
 * The module a source names → its digest and the copy to write into `namespace`, or why there is
 * none. The digest is of the unpacked module (what the proxy verifies); the copy holds the module
 * as is when it fits a ConfigMap, gzip'd when only that fits.
 */
export function resolveModule(
  map: ConfigMapObject | undefined,
  ref: ConfigMapModuleRef,
  namespace: string,
): { digest: string; copy: ModuleCopy } | ModuleProblem {
  const found = moduleBytes(map, ref);
  if (!(found instanceof Uint8Array)) return found;
  const where = `ConfigMap ${ref.namespace}/${ref.name} key ${ref.key}`;
  let bytes = found;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_MODULE_BYTES });
    } catch (error) {
      return {
        reason: "InvalidSource",
        message: `${where} is gzip data that does not unpack: ${(error as Error).message}`,
      };
    }
  }
  if (!WASM_MAGIC.every((byte, i) => bytes[i] === byte))
    return {
      reason: "InvalidSource",
      message: `${where} is not a WebAssembly module (it does not start with \\0asm)`,
    };
  const digest = sha256(bytes);
  let stored = bytes;
  if (stored.length > CONFIGMAP_MODULE_LIMIT) stored = gzipSync(bytes, { level: 9 });
  if (stored.length > CONFIGMAP_MODULE_LIMIT)
    return {
      reason: "InvalidSource",
      message: `${where}: the module is ${bytes.length} bytes (${stored.length} gzip'd), more than a ConfigMap holds (1 MiB); serve it from a url source instead`,
    };
  const name = pluginModuleCopyName(digest);
  return {
    digest,
    copy: {
      metadata: {
        name,
        namespace,
        labels: { [PLUGIN_MODULE_LABEL]: name.slice("rauta-plugin-".length) },
        annotations: { [PLUGIN_DIGEST_ANNOTATION]: digest },
      },
      binaryData: { [PLUGIN_MODULE_KEY]: Buffer.from(stored).toString("base64") },
    },
  };
}

/** The ConfigMap calls the step makes (KubernetesIO: the API; tests: memory). */
export interface ConfigMapAccess {
  /** undefined when it does not exist */
  get(namespace: string, name: string): Promise<ConfigMapObject | undefined>;
  /** server-side apply */
  apply(map: ModuleCopy): Promise<void>;
  list(namespace: string, label: string): Promise<ConfigMapObject[]>;
  delete(namespace: string, name: string): Promise<void>;
}

export class PluginModuleSync {
  private readonly access: ConfigMapAccess;
  private readonly namespace: string;
  // Source "<ns>/<name>/<key>" → the resourceVersion it was resolved at, and the result.
  private readonly resolved = new Map<string, { version: string; module: PluginModule }>();
  // Copies this process wrote (a copy's content is fixed by its name).
  private readonly written = new Set<string>();
  private pruned: string | undefined;

  constructor(access: ConfigMapAccess, namespace: string) {
    this.access = access;
    this.namespace = namespace;
  }

  /**
   * Resolves every source and writes the copies the config will name. `version` is the store's
   * resourceVersion of a source ConfigMap: an unchanged one is not read again.
   */
  async resolve(
    refs: readonly ConfigMapModuleRef[],
    version: (ref: ConfigMapModuleRef) => string | undefined,
  ): Promise<PluginModule[]> {
    const modules: PluginModule[] = [];
    const wanted = new Set<string>();
    for (const ref of refs) {
      const key = `${ref.namespace}/${ref.name}/${ref.key}`;
      if (wanted.has(key)) continue;
      wanted.add(key);
      const current = version(ref);
      const cached = this.resolved.get(key);
      if (current !== undefined && cached?.version === current) {
        modules.push(cached.module);
        continue;
      }
      const map = await this.access.get(ref.namespace, ref.name);
      const result = resolveModule(map, ref, this.namespace);
      let module: PluginModule;
      if ("reason" in result) module = { source: ref, problem: result };
      else {
        const name = result.copy.metadata.name;
        if (!this.written.has(name)) {
          await this.access.apply(result.copy);
          this.written.add(name);
        }
        module = {
          source: ref,
          digest: result.digest,
          copy: { namespace: this.namespace, name, key: PLUGIN_MODULE_KEY },
        };
      }
      const read = map?.metadata?.resourceVersion ?? current;
      if (read !== undefined) this.resolved.set(key, { version: read, module });
      modules.push(module);
    }
    for (const key of [...this.resolved.keys()]) if (!wanted.has(key)) this.resolved.delete(key);
    return modules;
  }

  /** Deletes the copies of digests no source resolves to any more (after the config moved on). */
  async prune(modules: readonly PluginModule[]): Promise<void> {
    const keep = new Set(modules.flatMap(m => (m.digest ? [m.digest] : [])));
    const signature = [...keep].sort().join(",");
    if (this.pruned === signature) return;
    const copies = await this.access.list(this.namespace, PLUGIN_MODULE_LABEL);
    for (const copy of copies) {
      const name = copy.metadata?.name;
      const digest = copy.metadata?.annotations?.[PLUGIN_DIGEST_ANNOTATION];
      if (!name || (digest !== undefined && keep.has(digest))) continue;
      await this.access.delete(this.namespace, name);
      this.written.delete(name);
    }
    this.pruned = signature;
  }
}
