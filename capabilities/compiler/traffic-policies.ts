// BackendTrafficPolicies attached the Gateway API way (GEP-713): which policy governs each
// route rule as a listener serves it, and the policies' status.
//
// For one target (kind, name, sectionName) the oldest policy wins (creationTimestamp, then
// namespace/name); later ones are Accepted False, Conflicted, for that target. Across targets the
// most specific attachment wins section by section: the HTTPRoute/GRPCRoute rule (sectionName),
// the route, the Gateway listener (sectionName), the Gateway, the Service.
import type { MakeCondition } from "./conditions.ts";
import type { ListenerModel } from "./gateways.ts";
import { compareStrings } from "./order.ts";
import { PolicyAttachment, layersFor, policyKeyOf, targetKey } from "./policy-attachment.ts";
import type { AttachedModel, RuleTarget, TargetExists } from "./policy-attachment.ts";
import type { BackendTrafficPolicy, Gateway, GRPCRoute, HTTPRoute, Service } from "./snapshot.ts";
import {
  CLUSTER_SECTIONS,
  SECTIONS,
  SECTION_FIELDS,
  compileTrafficSpec,
} from "./traffic-settings.ts";
import type { TrafficSection, TrafficSettings } from "./traffic-settings.ts";
import type { BackendTrafficPolicyStatus, Condition } from "./types.ts";

export type RoutableKind = "HTTPRoute" | "GRPCRoute";

type Model = AttachedModel<BackendTrafficPolicy, TrafficSettings>;

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

export interface TrafficTargets {
  gateways: readonly Gateway[];
  httpRoutes: readonly HTTPRoute[];
  grpcRoutes: readonly GRPCRoute[];
  services: readonly Service[];
}

export class TrafficPolicies {
  private readonly attachment: PolicyAttachment<BackendTrafficPolicy, TrafficSettings>;

  constructor(policies: readonly BackendTrafficPolicy[], targets: TrafficTargets) {
    this.attachment = new PolicyAttachment(
      "BackendTrafficPolicy",
      policies,
      p => compileTrafficSpec(p.spec),
      targetIndex(targets),
    );
  }

  /**
   * What governs a rule of a route as `listener` serves it. `ruleName` is the rule's name (a
   * sectionName target); TLSRoutes pass no route (only Gateway-level policies reach them).
   */
  effective(route: RuleTarget | null, listener: ListenerModel): EffectiveTraffic | null {
    const layers = layersFor(this.attachment, route, listener);
    if (layers.length === 0) return null;
    const settings: TrafficSettings = {};
    const won = new Map<TrafficSection, string>();
    for (const section of SECTIONS) {
      const m = layers.find(l => l.settings![section] !== undefined);
      if (!m) continue;
      (settings as Record<string, unknown>)[section] = m.settings![section];
      won.set(section, m.key);
    }
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
    const m = this.attachment.holder(targetKey("Service", namespace, name));
    return m ? { policy: m.key, settings: m.settings! } : undefined;
  }

  /** A Service policy reaches a Gateway when one of its routes sends to that Service. */
  usedThrough(policy: string, gatewayKey: string): void {
    this.attachment.usedIn(policy, gatewayKey);
  }

  statuses(controllerName: string, now: string): BackendTrafficPolicyStatus[] {
    return this.attachment.statuses(controllerName, now, accepted) as BackendTrafficPolicyStatus[];
  }
}

function accepted(model: Model, condition: MakeCondition): Condition {
  const sections = SECTIONS.filter(s => model.settings![s] !== undefined)
    .map(s => SECTION_FIELDS[s])
    .join(", ");
  return condition("Accepted", true, "Accepted", `policy applies: ${sections}`);
}

// undefined: the target exists; otherwise why it does not.
export function targetIndex(targets: TrafficTargets): TargetExists {
  const gateways = new Map(
    targets.gateways.map(g => [
      policyKeyOf(g.metadata),
      new Set(g.spec.listeners.map(l => l.name)),
    ]),
  );
  const routes = new Map<string, Set<string>>();
  for (const [kind, list] of [
    ["HTTPRoute", targets.httpRoutes],
    ["GRPCRoute", targets.grpcRoutes],
  ] as const)
    for (const r of list)
      routes.set(
        `${kind}/${policyKeyOf(r.metadata)}`,
        new Set((r.spec.rules ?? []).flatMap(rule => (rule.name ? [rule.name] : []))),
      );
  const services = new Set(targets.services.map(s => policyKeyOf(s.metadata)));
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
