// RautaPlugins → config plugins, their attachment to Gateways, and their status.
import type { Plugin, PluginSource } from "../../proxy/config/index.ts";
import type { MakeCondition, Problem } from "./conditions.ts";
import { conditionFactory } from "./conditions.ts";
import type { RautaPlugin } from "./snapshot.ts";
import type { RautaPluginStatus } from "./types.ts";
import { compareStrings } from "./order.ts";

export const BUILTIN_PLUGINS = ["jwt-auth", "cors", "rate-limit", "request-transformer"] as const;
export const PLUGINS_ANNOTATION = "rauta.io/plugins";
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function pluginSource(plugin: RautaPlugin): PluginSource | Problem {
  const source = plugin.spec.source;
  const set = Object.entries(source ?? {}).filter(([, v]) => v !== undefined);
  if (set.length !== 1)
    return {
      reason: "InvalidSource",
      message: "spec.source: set exactly one of builtin, configMap, inline",
    };
  if (source.builtin !== undefined) {
    if (!(BUILTIN_PLUGINS as readonly string[]).includes(source.builtin)) {
      return {
        reason: "InvalidSource",
        message: `spec.source.builtin: ${source.builtin} is not a built-in plugin (${BUILTIN_PLUGINS.join(", ")})`,
      };
    }
    return { builtin: source.builtin };
  }
  if (source.configMap !== undefined) {
    return {
      configMap: {
        namespace: plugin.metadata.namespace ?? "default",
        name: source.configMap.name,
        key: source.configMap.key ?? "plugin.wasm",
      },
    };
  }
  return { inline: source.inline ?? "" };
}

interface Entry {
  plugin: RautaPlugin;
  id: string;
  compiled?: Plugin;
  problem?: Problem;
}

export class PluginIndex {
  private readonly entries = new Map<string, Entry>();
  private readonly used = new Set<string>();

  constructor(plugins: readonly RautaPlugin[]) {
    for (const plugin of plugins) {
      const id = `${plugin.metadata.namespace ?? "default"}/${plugin.metadata.name}`;
      const source = pluginSource(plugin);
      if ("reason" in source) {
        this.entries.set(id, { plugin, id, problem: source });
        continue;
      }
      const limits = plugin.spec.limits ?? {};
      this.entries.set(id, {
        plugin,
        id,
        compiled: {
          id,
          ...(plugin.spec.digest ? { digest: plugin.spec.digest } : {}),
          source,
          config: (plugin.spec.config ?? {}) as Record<string, unknown>,
          needsBody: plugin.spec.needsBody ?? false,
          failurePolicy: plugin.spec.failurePolicy ?? "FailClosed",
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
            conditions: [accepted],
          },
        };
      });
  }
}
