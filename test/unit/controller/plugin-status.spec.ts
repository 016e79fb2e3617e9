// RautaPlugin Ready from the proxies' heartbeats: what `kubectl describe rautaplugin` says about
// which proxy loaded the plugin, which failed and why, and what is still pending.
import { expect } from "chai";
import type {
  Condition,
  ObjectStatus,
  RautaPluginStatus,
} from "../../../capabilities/compiler/index.ts";
import type { ProxyReport } from "../../../capabilities/controller/plugin-status.ts";
import { withPluginReadiness } from "../../../capabilities/controller/plugin-status.ts";

const NOW = "2026-01-01T00:00:00Z";
const OLD = `sha256:${"0".repeat(64)}`;

const accepted = (
  status: boolean,
  reason = "Accepted",
  message = "plugin is valid and attached",
): Condition => ({
  type: "Accepted",
  status: status ? "True" : "False",
  reason,
  message,
  lastTransitionTime: NOW,
  observedGeneration: 4,
});

const pluginStatus = (name: string, condition = accepted(true)): RautaPluginStatus => ({
  kind: "RautaPlugin",
  namespace: "shop",
  name,
  status: { observedGeneration: 4, conditions: [condition] },
});

function ready(
  proxies: ProxyReport[],
  options: { status?: RautaPluginStatus; configured?: string[]; since?: number } = {},
): { condition: Condition; settled: boolean } {
  const status = options.status ?? pluginStatus("geo");
  const { statuses, settled } = withPluginReadiness([status], {
    configured: new Set(options.configured ?? ["shop/geo"]),
    since: new Map([["shop/geo", options.since ?? 10]]),
    generation: 12,
    proxies,
    now: NOW,
  });
  const merged = statuses[0] as RautaPluginStatus;
  return { condition: merged.status.conditions.find(c => c.type === "Ready")!, settled };
}

const failing = (
  name: string,
  generation = 12,
  extra: Partial<{ serving: string; reason: string; message: string }> = {},
): ProxyReport => ({
  name,
  generation,
  plugins: {
    generation,
    problems: [
      {
        plugin: "shop/geo",
        reason: extra.reason ?? "InvalidModule",
        message: extra.message ?? "the module does not compile: section 3 is truncated",
        ...(extra.serving ? { serving: extra.serving } : {}),
      },
    ],
  },
});

describe("RautaPlugin Ready from the proxies", () => {
  it("is True when every live proxy serves a generation with the plugin and reports no problem", () => {
    const { condition, settled } = ready([
      { name: "rauta-proxy-a", generation: 12 },
      { name: "rauta-proxy-b", generation: 10, plugins: { generation: 10, problems: [] } },
    ]);
    expect(condition).to.include({
      status: "True",
      reason: "Loaded",
      message: "loaded by 2 proxies",
      observedGeneration: 4,
    });
    expect(settled).to.equal(true);
  });

  it("is False naming the proxy, the reason and the version that keeps serving", () => {
    const { condition, settled } = ready([
      failing("rauta-proxy-abc", 12, { serving: OLD }),
      { name: "rauta-proxy-def", generation: 12 },
    ]);
    expect(condition).to.include({
      status: "False",
      reason: "InvalidModule",
      message: `proxy rauta-proxy-abc: InvalidModule: the module does not compile: section 3 is truncated; the previous version ${OLD} keeps serving; 1 proxy loaded it`,
    });
    // a proxy that restarts may load it: keep asking
    expect(settled).to.equal(false);
  });

  it("names at most three failing proxies and counts the rest", () => {
    const { condition } = ready(
      ["p1", "p2", "p3", "p4", "p5"].map(n =>
        failing(n, 12, { reason: "MissingExport", message: "no on_request" }),
      ),
    );
    expect(condition.reason).to.equal("MissingExport");
    expect(condition.message).to.equal(
      "proxy p1: MissingExport: no on_request; proxy p2: MissingExport: no on_request; proxy p3: MissingExport: no on_request; 2 more proxies failed",
    );
  });

  it("is Unknown while a proxy still serves a generation older than the plugin's version", () => {
    const { condition, settled } = ready([
      { name: "rauta-proxy-a", generation: 12 },
      { name: "rauta-proxy-b", generation: 9 },
      { name: "rauta-proxy-c" },
    ]);
    expect(condition).to.include({
      status: "Unknown",
      reason: "Pending",
      message: "waiting for proxies to load generation 10 (1 of 3 proxies have)",
    });
    expect(settled).to.equal(false);
  });

  it("does not take an older generation's problem report as this version's", () => {
    const stale: ProxyReport = { ...failing("rauta-proxy-a", 9), generation: 12 };
    expect(ready([stale]).condition).to.include({ status: "Unknown", reason: "Pending" });
  });

  it("is Unknown when the report that would mention the plugin was cut to fit the Lease", () => {
    const cut: ProxyReport = {
      name: "rauta-proxy-a",
      generation: 12,
      plugins: { generation: 12, problems: [], omitted: 40 },
    };
    expect(ready([cut]).condition).to.include({ status: "Unknown", reason: "Pending" });
  });

  it("is Unknown when no proxy reports a heartbeat", () => {
    expect(ready([]).condition).to.include({
      status: "Unknown",
      reason: "Pending",
      message: "waiting for proxies to load generation 10 (no proxy reports a heartbeat)",
    });
  });

  it("is Unknown (NotAttached) for a valid plugin that no route or Gateway uses", () => {
    const { condition, settled } = ready([{ name: "p", generation: 12 }], { configured: [] });
    expect(condition).to.include({ status: "Unknown", reason: "NotAttached" });
    expect(settled).to.equal(true);
  });

  it("is False with the Accepted reason for a plugin whose spec is invalid", () => {
    const status = pluginStatus(
      "geo",
      accepted(
        false,
        "SourceNotFound",
        "spec.source.configMap: ConfigMap shop/modules does not exist",
      ),
    );
    const { condition, settled } = ready([{ name: "p", generation: 12 }], {
      status,
      configured: [],
    });
    expect(condition).to.include({
      status: "False",
      reason: "SourceNotFound",
      message: "not loaded: spec.source.configMap: ConfigMap shop/modules does not exist",
    });
    // an event (the ConfigMap appearing) changes this, not the proxies
    expect(settled).to.equal(true);
  });

  it("leaves every other status as it is and replaces a Ready it computed before", () => {
    const gateway = {
      kind: "Gateway",
      namespace: "shop",
      name: "gw",
      status: { conditions: [], listeners: [] },
    } as ObjectStatus;
    const previous = pluginStatus("geo");
    previous.status.conditions.push({ ...accepted(true), type: "Ready", status: "Unknown" });
    const { statuses } = withPluginReadiness([gateway, previous], {
      configured: new Set(["shop/geo"]),
      since: new Map(),
      generation: 12,
      proxies: [{ name: "p", generation: 12 }],
      now: NOW,
    });
    expect(statuses[0]).to.equal(gateway);
    const conditions = (statuses[1] as RautaPluginStatus).status.conditions;
    expect(conditions.map(c => `${c.type}=${c.status}`)).to.deep.equal([
      "Accepted=True",
      "Ready=True",
    ]);
  });
});
