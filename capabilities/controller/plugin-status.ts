// RautaPlugin Ready: what the proxies report about loading a plugin, merged (purely) into the
// compiled statuses, which say only whether the spec is valid (Accepted). Ready is True once
// every live proxy serves a generation with the plugin's current version and reports no problem
// with it; False naming each proxy that failed and why; Unknown while proxies catch up.
import type { PluginProblemsReport } from "../../proxy/config/index.ts";
import type { Condition, ObjectStatus, RautaPluginStatus } from "../compiler/index.ts";
import { conditionFactory } from "../compiler/conditions.ts";

/** One live proxy, as its heartbeat Lease tells it. */
export interface ProxyReport {
  /** the Lease's holder (the proxy's pod), else the Lease's name */
  name: string;
  /** the config generation it serves; undefined until it serves one */
  generation?: number;
  /** its plugin problems; undefined: none */
  plugins?: PluginProblemsReport;
}

export interface PluginReadinessInput {
  /** plugin ids the published config carries */
  configured: ReadonlySet<string>;
  /** plugin id → the first generation that carries its current version */
  since: ReadonlyMap<string, number>;
  /** the generation published; the fallback for `since` */
  generation: number;
  proxies: readonly ProxyReport[];
  now: string;
}

// Condition messages are bounded (the CRD allows 32 KiB); name a few proxies, count the rest.
const NAMED_FAILURES = 3;

const proxyWord = (n: number) => (n === 1 ? "proxy" : "proxies");
const plural = (n: number) => `${n} ${proxyWord(n)}`;

type Verdict =
  | { kind: "ok" }
  | { kind: "pending" }
  | { kind: "failed"; reason: string; text: string };

function verdictOf(proxy: ProxyReport, id: string, since: number): Verdict {
  if (proxy.generation === undefined || proxy.generation < since) return { kind: "pending" };
  const report = proxy.plugins;
  if (report === undefined) return { kind: "ok" };
  // problems of an older generation say nothing about this version of the plugin
  if (report.generation < since) return { kind: "pending" };
  const problem = report.problems.find(p => p.plugin === id);
  if (problem)
    return {
      kind: "failed",
      reason: problem.reason,
      text: `proxy ${proxy.name}: ${problem.reason}: ${problem.message}${problem.serving ? `; the previous version ${problem.serving} keeps serving` : ""}`,
    };
  // the report was cut to fit its Lease: this plugin may be among those left out
  return report.omitted ? { kind: "pending" } : { kind: "ok" };
}

function readiness(
  status: RautaPluginStatus,
  input: PluginReadinessInput,
): { condition: Condition; fromProxies: boolean } {
  const make = conditionFactory(status.status.observedGeneration, input.now);
  const accepted = status.status.conditions.find(c => c.type === "Accepted");
  if (accepted && accepted.status !== "True")
    return {
      condition: make("Ready", false, accepted.reason, `not loaded: ${accepted.message}`),
      fromProxies: false,
    };
  const id = `${status.namespace}/${status.name}`;
  if (!input.configured.has(id))
    return {
      condition: make(
        "Ready",
        "Unknown",
        "NotAttached",
        "no route or Gateway uses this plugin, so no proxy loads it",
      ),
      fromProxies: false,
    };
  const proxied = (...args: Parameters<typeof make>) => ({
    condition: make(...args),
    fromProxies: true,
  });
  const since = input.since.get(id) ?? input.generation;
  const verdicts = [...input.proxies]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(p => verdictOf(p, id, since));
  const failed = verdicts.filter(v => v.kind === "failed");
  const ok = verdicts.filter(v => v.kind === "ok").length;
  const total = verdicts.length;
  if (failed.length > 0) {
    const named = failed.slice(0, NAMED_FAILURES).map(f => f.text);
    const more = failed.length - NAMED_FAILURES;
    if (more > 0) named.push(`${more} more ${proxyWord(more)} failed`);
    return proxied(
      "Ready",
      false,
      failed[0]!.reason,
      [...named, ...(ok > 0 ? [`${plural(ok)} loaded it`] : [])].join("; "),
    );
  }
  if (total === 0)
    return proxied(
      "Ready",
      "Unknown",
      "Pending",
      `waiting for proxies to load generation ${since} (no proxy reports a heartbeat)`,
    );
  if (ok < total)
    return proxied(
      "Ready",
      "Unknown",
      "Pending",
      `waiting for proxies to load generation ${since} (${ok} of ${plural(total)} have)`,
    );
  return proxied("Ready", true, "Loaded", `loaded by ${plural(total)}`);
}

/**
 * The compiled statuses with each RautaPlugin's Ready condition added; `settled` is false while
 * some plugin's Ready depends on proxies that have not all loaded it (worth asking again).
 */
export function withPluginReadiness(
  statuses: readonly ObjectStatus[],
  input: PluginReadinessInput,
): { statuses: ObjectStatus[]; settled: boolean } {
  let settled = true;
  const merged = statuses.map(s => {
    if (s.kind !== "RautaPlugin") return s;
    const { condition, fromProxies } = readiness(s, input);
    if (fromProxies && condition.status !== "True") settled = false;
    return {
      ...s,
      status: {
        ...s.status,
        conditions: [...s.status.conditions.filter(c => c.type !== "Ready"), condition],
      },
    };
  });
  return { statuses: merged, settled };
}
