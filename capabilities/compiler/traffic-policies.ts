// BackendTrafficPolicies attached the Gateway API way (GEP-713): which policy governs each
// route rule as a listener serves it, and the policies' status.
//
// For one target (kind, name, sectionName) the oldest policy wins (creationTimestamp, then
// namespace/name); later ones are Accepted False, Conflicted, for that target. Across targets the
// most specific attachment wins section by section: the HTTPRoute/GRPCRoute rule (sectionName),
// the route, the Gateway listener (sectionName), the Gateway, the Service.
import type { MakeCondition, Problem } from "./conditions.ts";
import { conditionFactory } from "./conditions.ts";
import type { ListenerModel } from "./gateways.ts";
import { compareStrings } from "./order.ts";
import type { BackendTrafficPolicy, Gateway, GRPCRoute, HTTPRoute, Service } from "./snapshot.ts";
import {
  CLUSTER_SECTIONS,
  SECTIONS,
  SECTION_FIELDS,
  compileTrafficSpec,
} from "./traffic-settings.ts";
import type { TrafficSection, TrafficSettings } from "./traffic-settings.ts";
import type { BackendTrafficPolicyStatus, Condition, ParentRefStatus } from "./types.ts";

export type RoutableKind = "HTTPRoute" | "GRPCRoute";

interface PolicyModel {
  key: string;
  policy: BackendTrafficPolicy;
  settings?: TrafficSettings;
  invalid?: Problem;
  /** targets that do not exist, and targets an older policy holds */
  notFound: Array<{ ref: ParentRefStatus; message: string }>;
  conflicted: Array<{ ref: ParentRefStatus; message: string }>;
  /** Gateways ("<namespace>/<name>") whose traffic this policy shapes */
  gateways: Set<string>;
}

/** The policy a layer contributes, with its settings. */
export interface Layer {
  policy: string;
  settings: TrafficSettings;
}

/** What governs one route rule on one listener: each section from the policy that won it. */
export interface EffectiveTraffic {
  settings: TrafficSettings;
  /** policy keys that won a section, sorted ("" when none) */
  key: string;
  /** the same for the cluster sections only */
  clusterKey: string;
  policies: string[];
}

const GATEWAY_GROUP = "gateway.networking.k8s.io";
const keyOf = (m: { namespace?: string; name: string }) => `${m.namespace ?? "default"}/${m.name}`;

function olderFirst(a: BackendTrafficPolicy, b: BackendTrafficPolicy): number {
  return (
    compareStrings(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") ||
    compareStrings(keyOf(a.metadata), keyOf(b.metadata))
  );
}

export interface TrafficTargets {
  gateways: readonly Gateway[];
  httpRoutes: readonly HTTPRoute[];
  grpcRoutes: readonly GRPCRoute[];
  services: readonly Service[];
}

export class TrafficPolicies {
  private readonly models: PolicyModel[] = [];
  /** target key → the winning policy */
  private readonly byTarget = new Map<string, PolicyModel>();

  constructor(policies: readonly BackendTrafficPolicy[], targets: TrafficTargets) {
    const exists = targetIndex(targets);
    for (const policy of [...policies].sort(olderFirst)) {
      const namespace = policy.metadata.namespace ?? "default";
      const model: PolicyModel = {
        key: keyOf(policy.metadata),
        policy,
        notFound: [],
        conflicted: [],
        gateways: new Set(),
      };
      this.models.push(model);
      const compiled = compileTrafficSpec(policy.spec);
      if (Array.isArray(compiled)) {
        model.invalid = {
          reason: "Invalid",
          message: compiled.map(p => p.message).join("; "),
        };
        continue;
      }
      model.settings = compiled;
      for (const t of policy.spec.targetRefs ?? []) {
        const ref: ParentRefStatus = {
          group: t.group,
          kind: t.kind,
          namespace,
          name: t.name,
          ...(t.sectionName ? { sectionName: t.sectionName } : {}),
        };
        const key = `${t.kind}/${namespace}/${t.name}/${t.sectionName ?? ""}`;
        const missing = exists(t.kind, namespace, t.name, t.sectionName);
        if (missing !== undefined) {
          model.notFound.push({ ref, message: missing });
          continue;
        }
        const holder = this.byTarget.get(key);
        if (holder !== undefined) {
          model.conflicted.push({
            ref,
            message: `BackendTrafficPolicy ${holder.key} is older and targets the same ${describe(t)}; only one policy applies per target`,
          });
          continue;
        }
        this.byTarget.set(key, model);
      }
    }
  }

  private layer(key: string): PolicyModel | undefined {
    return this.byTarget.get(key);
  }

  /**
   * What governs a rule of a route as `listener` serves it. `ruleName` is the rule's name (a
   * sectionName target); TLSRoutes pass no route (only Gateway-level policies reach them).
   */
  effective(
    route: { kind: RoutableKind; namespace: string; name: string; ruleName?: string } | null,
    listener: ListenerModel,
  ): EffectiveTraffic | null {
    const gatewayNs = listener.gateway.metadata.namespace ?? "default";
    const gatewayName = listener.gateway.metadata.name;
    const candidates: Array<PolicyModel | undefined> = [];
    if (route) {
      const base = `${route.kind}/${route.namespace}/${route.name}/`;
      if (route.ruleName) candidates.push(this.layer(base + route.ruleName));
      candidates.push(this.layer(base));
    }
    // a ListenerSet's listeners are not the Gateway's sections
    if (listener.owner.kind === "Gateway")
      candidates.push(this.layer(`Gateway/${gatewayNs}/${gatewayName}/${listener.name}`));
    candidates.push(this.layer(`Gateway/${gatewayNs}/${gatewayName}/`));
    const layers = candidates.filter((m): m is PolicyModel => m !== undefined);
    if (layers.length === 0) return null;
    const settings: TrafficSettings = {};
    const won = new Map<TrafficSection, string>();
    for (const section of SECTIONS) {
      const m = layers.find(l => l.settings![section] !== undefined);
      if (!m) continue;
      (settings as Record<string, unknown>)[section] = m.settings![section];
      won.set(section, m.key);
    }
    const gatewayKey = `${gatewayNs}/${gatewayName}`;
    for (const m of layers) m.gateways.add(gatewayKey);
    const keyFor = (sections: readonly TrafficSection[]) =>
      [...new Set(sections.map(s => won.get(s)).filter((k): k is string => k !== undefined))]
        .sort(compareStrings)
        .join("+");
    return {
      settings,
      key: keyFor(SECTIONS),
      clusterKey: keyFor(CLUSTER_SECTIONS),
      policies: [...new Set(layers.map(l => l.key))].sort(compareStrings),
    };
  }

  /** The cluster sections a Service's own policy sets (the least specific attachment). */
  serviceSettings(namespace: string, name: string): Layer | undefined {
    const m = this.layer(`Service/${namespace}/${name}/`);
    return m ? { policy: m.key, settings: m.settings! } : undefined;
  }

  /** A Service policy reaches a Gateway when one of its routes sends to that Service. */
  usedThrough(policy: string, gatewayKey: string): void {
    this.models.find(m => m.key === policy)?.gateways.add(gatewayKey);
  }

  statuses(controllerName: string, now: string): BackendTrafficPolicyStatus[] {
    const out: BackendTrafficPolicyStatus[] = [];
    for (const model of [...this.models].sort((a, b) => compareStrings(a.key, b.key))) {
      const condition = conditionFactory(model.policy.metadata.generation, now);
      const namespace = model.policy.metadata.namespace ?? "default";
      // one entry per ancestor: a target that failed under a Gateway the policy otherwise
      // applies in is a note on that Gateway's Accepted condition, not a second entry
      const ancestors = new Map<
        string,
        { ancestorRef: ParentRefStatus; conditions: Condition[] }
      >();
      const refKey = (r: ParentRefStatus) =>
        `${r.group}/${r.kind}/${r.namespace}/${r.name}/${r.sectionName ?? ""}`;
      const failed = (ref: ParentRefStatus, reason: string, message: string) => {
        const held = ancestors.get(refKey(ref));
        if (held) {
          const c = held.conditions[0]!;
          held.conditions = [{ ...c, message: `${c.message}; ${message}` }];
        } else
          ancestors.set(refKey(ref), {
            ancestorRef: ref,
            conditions: [condition("Accepted", false, reason, message)],
          });
      };
      if (model.invalid) {
        for (const t of model.policy.spec.targetRefs ?? [])
          failed(
            {
              group: t.group,
              kind: t.kind,
              namespace,
              name: t.name,
              ...(t.sectionName ? { sectionName: t.sectionName } : {}),
            },
            "Invalid",
            model.invalid.message,
          );
      } else {
        for (const gateway of [...model.gateways].sort(compareStrings)) {
          const [ns, name] = gateway.split("/") as [string, string];
          const ancestorRef = { group: GATEWAY_GROUP, kind: "Gateway", namespace: ns, name };
          ancestors.set(refKey(ancestorRef), {
            ancestorRef,
            conditions: [accepted(condition, model)],
          });
        }
        for (const { ref, message } of model.notFound) failed(ref, "TargetNotFound", message);
        for (const { ref, message } of model.conflicted) failed(ref, "Conflicted", message);
      }
      if (ancestors.size === 0) continue;
      out.push({
        kind: "BackendTrafficPolicy",
        namespace,
        name: model.policy.metadata.name,
        status: {
          ancestors: [...ancestors.values()]
            .slice(0, 16)
            .map(a => ({ ancestorRef: a.ancestorRef, controllerName, conditions: a.conditions })),
        },
      });
    }
    return out;
  }
}

function accepted(condition: MakeCondition, model: PolicyModel): Condition {
  const sections = SECTIONS.filter(s => model.settings![s] !== undefined)
    .map(s => SECTION_FIELDS[s])
    .join(", ");
  return condition("Accepted", true, "Accepted", `policy applies: ${sections}`);
}

function describe(t: { kind: string; name: string; sectionName?: string }): string {
  return `${t.kind} ${t.name}${t.sectionName ? ` (sectionName ${t.sectionName})` : ""}`;
}

// undefined: the target exists; otherwise why it does not.
function targetIndex(
  targets: TrafficTargets,
): (kind: string, namespace: string, name: string, section?: string) => string | undefined {
  const gateways = new Map(
    targets.gateways.map(g => [keyOf(g.metadata), new Set(g.spec.listeners.map(l => l.name))]),
  );
  const routes = new Map<string, Set<string>>();
  for (const [kind, list] of [
    ["HTTPRoute", targets.httpRoutes],
    ["GRPCRoute", targets.grpcRoutes],
  ] as const)
    for (const r of list)
      routes.set(
        `${kind}/${keyOf(r.metadata)}`,
        new Set((r.spec.rules ?? []).flatMap(rule => (rule.name ? [rule.name] : []))),
      );
  const services = new Set(targets.services.map(s => keyOf(s.metadata)));
  return (kind, namespace, name, section) => {
    const key = `${namespace}/${name}`;
    if (kind === "Gateway") {
      const listeners = gateways.get(key);
      if (!listeners) return `Gateway ${key} does not exist`;
      if (section !== undefined && !listeners.has(section))
        return `Gateway ${key} has no listener named ${section}`;
      return undefined;
    }
    if (kind === "Service") return services.has(key) ? undefined : `Service ${key} does not exist`;
    const rules = routes.get(`${kind}/${key}`);
    if (!rules) return `${kind} ${key} does not exist`;
    if (section !== undefined && !rules.has(section))
      return `${kind} ${key} has no rule named ${section}`;
    return undefined;
  };
}
