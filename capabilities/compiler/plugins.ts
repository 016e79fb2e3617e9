// RautaPlugins → config plugins, their attachment to Gateways, and their status.
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import type { Plugin, PluginSource } from "../../proxy/config/index.ts";
import { BUILTIN_PLUGINS } from "../../generated/rauta/builtin-plugins.ts";
import type { MakeCondition, Problem } from "./conditions.ts";
import { conditionFactory } from "./conditions.ts";
import type { BuiltinSchemas } from "./plugin-config.ts";
import { checkPluginConfig } from "./plugin-config.ts";
import type { PluginModule, RautaPlugin } from "./snapshot.ts";
import type { RautaPluginStatus } from "./types.ts";
import { compareStrings } from "./order.ts";

export { BUILTIN_PLUGINS } from "../../generated/rauta/builtin-plugins.ts";
export const PLUGINS_ANNOTATION = "rauta.io/plugins";
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SOURCE_KINDS = "builtin, configMap, inline, url";
const DIGEST = /^sha256:[a-f0-9]{64}$/;
// As the proxy's ModuleStore: a gzip'd module is unpacked before it is hashed, within this bound.
const MAX_MODULE_BYTES = 32 * 1024 * 1024;

export interface PluginIndexOptions {
  builtinSchemas?: BuiltinSchemas;
  modules?: readonly PluginModule[];
}

interface ResolvedSource {
  source: PluginSource;
  /** what the proxy verifies the module against (config `digest`) */
  digest?: string;
  /** what status.digest reports: the pinned digest, or the one computed from the module */
  knownDigest?: string;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

// Inline modules are hashed here (status.digest, spec.digest check) once per source object.
const inlineDigests = new WeakMap<object, string | Problem>();

function inlineDigest(source: object, inline: string): string | Problem {
  let digest = inlineDigests.get(source);
  if (digest === undefined) {
    digest = hashInline(inline);
    inlineDigests.set(source, digest);
  }
  return digest;
}

function hashInline(inline: string): string | Problem {
  const bytes = Buffer.from(inline, "base64");
  if (bytes.length === 0)
    return {
      reason: "InvalidSource",
      message: "spec.source.inline: empty or not base64; give the module base64-encoded",
    };
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return sha256(bytes);
  try {
    return sha256(gunzipSync(bytes, { maxOutputLength: MAX_MODULE_BYTES }));
  } catch (error) {
    return {
      reason: "InvalidSource",
      message: `spec.source.inline: gzip data that does not decompress: ${(error as Error).message}`,
    };
  }
}

// A source problem may still know the module's digest (status.digest shows what is there).
type SourceProblem = Problem & { digest?: string };

function digestMismatch(
  plugin: RautaPlugin,
  actual: string,
  where: string,
): SourceProblem | undefined {
  const expected = plugin.spec.digest;
  return expected !== undefined && expected !== actual
    ? {
        reason: "DigestMismatch",
        digest: actual,
        message: `spec.digest is ${expected} but ${where} holds a module with digest ${actual}; update spec.digest or the module`,
      }
    : undefined;
}

function isHttpUrl(value: string | undefined): value is string {
  if (value === undefined || !/^https?:\/\/\S+$/.test(value)) return false;
  try {
    return new URL(value).host !== "";
  } catch {
    return false;
  }
}

function urlSource(
  plugin: RautaPlugin,
  url: { url?: string; sha256?: string },
): ResolvedSource | Problem {
  const invalid = (message: string): Problem => ({ reason: "InvalidSource", message });
  if (!isHttpUrl(url.url))
    return invalid(
      `spec.source.url.url: ${JSON.stringify(url.url ?? "")} is not an http:// or https:// URL; give the address the proxies download the module from`,
    );
  if (!url.sha256)
    return invalid(
      'spec.source.url.sha256 is required: pin the module by its digest, "sha256:<64 hex>" (sha256sum of the .wasm file), so every proxy runs the same bytes',
    );
  if (!DIGEST.test(url.sha256))
    return invalid(
      `spec.source.url.sha256: ${JSON.stringify(url.sha256)} is not "sha256:<64 lowercase hex>"`,
    );
  if (plugin.spec.digest !== undefined && plugin.spec.digest !== url.sha256)
    return invalid(
      `spec.digest (${plugin.spec.digest}) and spec.source.url.sha256 (${url.sha256}) disagree; remove spec.digest (url.sha256 pins the module) or make them equal`,
    );
  return {
    source: { url: { url: url.url, sha256: url.sha256 } },
    digest: url.sha256,
    knownDigest: url.sha256,
  };
}

function pluginSource(
  plugin: RautaPlugin,
  modules: ReadonlyMap<string, PluginModule> | undefined,
): ResolvedSource | SourceProblem {
  const source = plugin.spec.source;
  const set = Object.entries(source ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k);
  if (set.length !== 1)
    return {
      reason: "InvalidSource",
      message: `spec.source: set exactly one of ${SOURCE_KINDS} (${set.length === 0 ? "none is set" : `found ${set.join(", ")}`})`,
    };
  const pinned = plugin.spec.digest
    ? { digest: plugin.spec.digest, knownDigest: plugin.spec.digest }
    : {};
  if (source.builtin !== undefined) {
    if (!(BUILTIN_PLUGINS as readonly string[]).includes(source.builtin)) {
      return {
        reason: "InvalidSource",
        message: `spec.source.builtin: ${source.builtin} is not a built-in plugin (${BUILTIN_PLUGINS.join(", ")})`,
      };
    }
    return { source: { builtin: source.builtin }, ...pinned };
  }
  if (source.configMap !== undefined) {
    const ref = {
      namespace: plugin.metadata.namespace ?? "default",
      name: source.configMap.name,
      key: source.configMap.key ?? "plugin.wasm",
    };
    // Standalone: nothing copies modules; the proxy reads the ConfigMap the plugin names.
    if (modules === undefined) return { source: { configMap: ref }, ...pinned };
    const where = `ConfigMap ${ref.namespace}/${ref.name} key ${ref.key}`;
    const found = modules.get(`${ref.namespace}/${ref.name}/${ref.key}`);
    if (!found)
      return {
        reason: "SourceNotFound",
        message: `spec.source.configMap: ${where} has not been read yet`,
      };
    if (found.problem)
      return {
        reason: found.problem.reason,
        message: `spec.source.configMap: ${found.problem.message}`,
      };
    return (
      digestMismatch(plugin, found.digest, where) ?? {
        source: { configMap: found.copy },
        digest: found.digest,
        knownDigest: found.digest,
      }
    );
  }
  if (source.url !== undefined) return urlSource(plugin, source.url);
  const digest = inlineDigest(source, source.inline ?? "");
  if (typeof digest !== "string") return digest;
  return (
    digestMismatch(plugin, digest, "spec.source.inline") ?? {
      source: { inline: source.inline ?? "" },
      ...pinned,
      knownDigest: digest,
    }
  );
}

/**
 * Everything wrong with a RautaPlugin on its own (admission: what can never work), by the same
 * checks the compiler reports in status. What depends on other objects (the ConfigMap a source
 * names) is not judged here.
 */
export function pluginSpecProblems(
  plugin: RautaPlugin,
  builtinSchemas?: BuiltinSchemas,
): { problems: Problem[]; notes: string[] } {
  const resolved = pluginSource(plugin, undefined);
  const { issues, notes } = checkPluginConfig(plugin, builtinSchemas);
  return {
    problems: [
      ...("reason" in resolved ? [{ reason: resolved.reason, message: resolved.message }] : []),
      ...issues.map(message => ({ reason: "ConfigInvalid", message })),
    ],
    notes,
  };
}

interface Entry {
  plugin: RautaPlugin;
  id: string;
  compiled?: Plugin;
  problem?: Problem;
  digest?: string;
}

export class PluginIndex {
  private readonly entries = new Map<string, Entry>();
  private readonly used = new Set<string>();

  constructor(plugins: readonly RautaPlugin[], options: PluginIndexOptions = {}) {
    const modules = options.modules
      ? new Map(
          options.modules.map(m => [`${m.source.namespace}/${m.source.name}/${m.source.key}`, m]),
        )
      : undefined;
    for (const plugin of plugins) {
      const id = `${plugin.metadata.namespace ?? "default"}/${plugin.metadata.name}`;
      const resolved = pluginSource(plugin, modules);
      if ("reason" in resolved) {
        const { digest, ...problem } = resolved;
        this.entries.set(id, { plugin, id, problem, ...(digest ? { digest } : {}) });
        continue;
      }
      const digest = resolved.knownDigest;
      const { issues } = checkPluginConfig(plugin, options.builtinSchemas);
      if (issues.length > 0) {
        this.entries.set(id, {
          plugin,
          id,
          problem: { reason: "ConfigInvalid", message: issues.join("; ") },
          ...(digest ? { digest } : {}),
        });
        continue;
      }
      const limits = plugin.spec.limits ?? {};
      this.entries.set(id, {
        plugin,
        id,
        ...(digest ? { digest } : {}),
        compiled: {
          id,
          ...(resolved.digest ? { digest: resolved.digest } : {}),
          source: resolved.source,
          config: (plugin.spec.config ?? {}) as Record<string, unknown>,
          needsBody: plugin.spec.needsBody ?? false,
          failurePolicy: plugin.spec.failurePolicy ?? "FailClosed",
          ...(plugin.spec.isolation && plugin.spec.isolation !== "Auto"
            ? { isolation: plugin.spec.isolation }
            : {}),
          limits: {
            memoryMiB: limits.memoryMiB ?? 16,
            timeoutMs: limits.timeoutMs ?? 50,
            maxBodyBytes: limits.maxBodyBytes ?? 1_048_576,
          },
        },
      });
    }
  }

  resolve(
    namespace: string,
    name: string,
    field: string,
  ): { id: string; problem?: undefined } | { id?: undefined; problem: Problem } {
    const id = `${namespace}/${name}`;
    const entry = this.entries.get(id);
    if (!entry)
      return {
        problem: {
          reason: "PluginNotFound",
          message: `${field}: RautaPlugin ${id} does not exist`,
        },
      };
    if (!entry.compiled)
      return {
        problem: {
          reason: "InvalidPlugin",
          message: `${field}: RautaPlugin ${id} is invalid: ${entry.problem?.message}`,
        },
      };
    this.used.add(id);
    return { id };
  }

  // `rauta.io/plugins: "auth, cors"` on an HTTPRoute: names of RautaPlugins in its namespace.
  static parseAnnotation(
    value: string,
  ): { names: string[]; problem?: undefined } | { names?: undefined; problem: string } {
    const names = value
      .split(",")
      .map(s => s.trim())
      .filter(s => s.length > 0);
    const bad = names.find(n => !NAME.test(n) || n.length > 253);
    if (bad !== undefined)
      return {
        problem: `annotation ${PLUGINS_ANNOTATION}: ${JSON.stringify(bad)} is not a valid RautaPlugin name`,
      };
    return { names };
  }

  // Plugins that target a Gateway (optionally one listener of it) through spec.targetRefs.
  gatewayPlugins(gatewayNamespace: string, gatewayName: string, listenerName: string): string[] {
    const ids: string[] = [];
    for (const entry of this.entries.values()) {
      if (!entry.compiled || (entry.plugin.metadata.namespace ?? "default") !== gatewayNamespace)
        continue;
      const targets = entry.plugin.spec.targetRefs ?? [];
      if (
        targets.some(
          t =>
            t.kind === "Gateway" &&
            t.name === gatewayName &&
            (!t.sectionName || t.sectionName === listenerName),
        )
      ) {
        this.used.add(entry.id);
        ids.push(entry.id);
      }
    }
    return ids.sort();
  }

  // Forget plugins that were resolved but end up in no served route or listener.
  retainUsed(ids: ReadonlySet<string>): void {
    for (const id of [...this.used]) if (!ids.has(id)) this.used.delete(id);
  }

  compiled(): Plugin[] {
    return [...this.used].sort().map(id => this.entries.get(id)!.compiled!);
  }

  statuses(now: string): RautaPluginStatus[] {
    return [...this.entries.values()]
      .sort((a, b) => compareStrings(a.id, b.id))
      .map(entry => {
        const condition: MakeCondition = conditionFactory(entry.plugin.metadata.generation, now);
        const accepted = entry.problem
          ? condition("Accepted", false, entry.problem.reason, entry.problem.message)
          : condition(
              "Accepted",
              true,
              "Accepted",
              this.used.has(entry.id)
                ? "plugin is valid and attached"
                : "plugin is valid; nothing attaches it yet",
            );
        return {
          kind: "RautaPlugin" as const,
          namespace: entry.plugin.metadata.namespace ?? "default",
          name: entry.plugin.metadata.name,
          status: {
            ...(entry.plugin.metadata.generation === undefined
              ? {}
              : { observedGeneration: entry.plugin.metadata.generation }),
            ...(entry.digest ? { digest: entry.digest } : {}),
            conditions: [accepted],
          },
        };
      });
  }
}
