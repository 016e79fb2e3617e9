// GEP-713 policy attachment, for any of our policy kinds: which policy holds each target, and
// the policies' status.ancestors.
//
// For one target (kind, name, sectionName) the oldest policy wins (creationTimestamp, then
// namespace/name); later ones are Accepted False, Conflicted, for that target. A target that
// does not exist is TargetNotFound; a spec that cannot be used is Invalid. Status has one entry
// per Gateway the policy took effect in; a failed target under such a Gateway is a note on that
// entry's condition, not a second entry.
import type { MakeCondition, Problem } from "./conditions.ts";
import type { ListenerModel } from "./gateways.ts";
import { conditionFactory } from "./conditions.ts";
import { compareStrings } from "./order.ts";
import type { ObjectMeta } from "./snapshot.ts";
import type { Condition, ParentRefStatus, PolicyStatus } from "./types.ts";

export interface TargetRef {
  group: string;
  kind: string;
  name: string;
  sectionName?: string;
}

export interface AttachablePolicy {
  metadata: ObjectMeta;
  spec: { targetRefs?: readonly TargetRef[] };
}

export interface AttachedModel<P, S> {
  key: string;
  policy: P;
  settings?: S;
  invalid?: Problem;
  notFound: Array<{ ref: ParentRefStatus; message: string }>;
  conflicted: Array<{ ref: ParentRefStatus; message: string }>;
  /** Gateways ("<namespace>/<name>") whose traffic this policy shapes */
  gateways: Set<string>;
}

/** undefined: the target exists; otherwise why it does not */
export type TargetExists = (
  kind: string,
  namespace: string,
  name: string,
  section?: string,
) => string | undefined;

const GATEWAY_GROUP = "gateway.networking.k8s.io";
export const policyKeyOf = (m: { namespace?: string; name: string }) =>
  `${m.namespace ?? "default"}/${m.name}`;
export const targetKey = (kind: string, namespace: string, name: string, section = "") =>
  `${kind}/${namespace}/${name}/${section}`;

function olderFirst(a: AttachablePolicy, b: AttachablePolicy): number {
  return (
    compareStrings(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") ||
    compareStrings(policyKeyOf(a.metadata), policyKeyOf(b.metadata))
  );
}

export class PolicyAttachment<P extends AttachablePolicy, S> {
  readonly models: AttachedModel<P, S>[] = [];
  private readonly byTarget = new Map<string, AttachedModel<P, S>>();
  private readonly kind: string;

  constructor(
    kind: string,
    policies: readonly P[],
    compileSpec: (policy: P) => S | Problem[],
    exists: TargetExists,
  ) {
    this.kind = kind;
    for (const policy of [...policies].sort(olderFirst)) {
      const namespace = policy.metadata.namespace ?? "default";
      const model: AttachedModel<P, S> = {
        key: policyKeyOf(policy.metadata),
        policy,
        notFound: [],
        conflicted: [],
        gateways: new Set(),
      };
      this.models.push(model);
      const compiled = compileSpec(policy);
      if (Array.isArray(compiled)) {
        model.invalid = { reason: "Invalid", message: compiled.map(p => p.message).join("; ") };
        continue;
      }
      model.settings = compiled;
      for (const t of policy.spec.targetRefs ?? []) {
        const ref = refOf(t, namespace);
        const missing = exists(t.kind, namespace, t.name, t.sectionName);
        if (missing !== undefined) {
          model.notFound.push({ ref, message: missing });
          continue;
        }
        const key = targetKey(t.kind, namespace, t.name, t.sectionName);
        const holder = this.byTarget.get(key);
        if (holder !== undefined) {
          model.conflicted.push({
            ref,
            message: `${kind} ${holder.key} is older and targets the same ${t.kind} ${t.name}${t.sectionName ? ` (sectionName ${t.sectionName})` : ""}; only one policy applies per target`,
          });
          continue;
        }
        this.byTarget.set(key, model);
      }
    }
  }

  /** The policy holding a target (see targetKey), if any. */
  holder(key: string): AttachedModel<P, S> | undefined {
    return this.byTarget.get(key);
  }

  /** The policy took effect in a Gateway ("<namespace>/<name>"). */
  usedIn(policy: string, gatewayKey: string): void {
    this.models.find(m => m.key === policy)?.gateways.add(gatewayKey);
  }

  /** A policy that applies nowhere it was meant to, for this reason (a note on its status). */
  conflict(policy: string, ref: ParentRefStatus, message: string): void {
    this.models.find(m => m.key === policy)?.conflicted.push({ ref, message });
  }

  statuses(
    controllerName: string,
    now: string,
    accepted: (model: AttachedModel<P, S>, condition: MakeCondition) => Condition,
  ): PolicyStatus[] {
    const out: PolicyStatus[] = [];
    for (const model of [...this.models].sort((a, b) => compareStrings(a.key, b.key))) {
      const condition = conditionFactory(model.policy.metadata.generation, now);
      const namespace = model.policy.metadata.namespace ?? "default";
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
          failed(refOf(t, namespace), "Invalid", model.invalid.message);
      } else {
        for (const gateway of [...model.gateways].sort(compareStrings)) {
          const [ns, name] = gateway.split("/") as [string, string];
          const ancestorRef = { group: GATEWAY_GROUP, kind: "Gateway", namespace: ns, name };
          ancestors.set(refKey(ancestorRef), {
            ancestorRef,
            conditions: [accepted(model, condition)],
          });
        }
        for (const { ref, message } of model.notFound) failed(ref, "TargetNotFound", message);
        for (const { ref, message } of model.conflicted) failed(ref, "Conflicted", message);
      }
      if (ancestors.size === 0) continue;
      out.push({
        kind: this.kind,
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

/** A problem for each targetRef that names the same target (kind, name, sectionName) as an earlier one. */
export function repeatedTargets(refs: readonly TargetRef[] | undefined): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const [i, t] of (refs ?? []).entries()) {
    const key = `${t.kind}/${t.name}/${t.sectionName ?? ""}`;
    if (seen.has(key)) problems.push(`spec.targetRefs[${i}]: the same target as an earlier entry`);
    seen.add(key);
  }
  return problems;
}

/** A route rule as a policy can target it (sectionName: the rule's name). */
export interface RuleTarget {
  kind: "HTTPRoute" | "GRPCRoute";
  namespace: string;
  name: string;
  ruleName?: string;
}

/**
 * The policies that reach a rule as `listener` serves it, most specific first: the rule, the
 * route, the Gateway listener, the Gateway. Each has taken effect in the listener's Gateway.
 */
export function layersFor<P extends AttachablePolicy, S>(
  attachment: PolicyAttachment<P, S>,
  route: RuleTarget | null,
  listener: ListenerModel,
): AttachedModel<P, S>[] {
  const gatewayNs = listener.gateway.metadata.namespace ?? "default";
  const gatewayName = listener.gateway.metadata.name;
  const holder = (key: string) => attachment.holder(key);
  const candidates: Array<AttachedModel<P, S> | undefined> = [];
  if (route) {
    if (route.ruleName)
      candidates.push(holder(targetKey(route.kind, route.namespace, route.name, route.ruleName)));
    candidates.push(holder(targetKey(route.kind, route.namespace, route.name)));
  }
  // a ListenerSet's listeners are not the Gateway's sections
  if (listener.owner.kind === "Gateway")
    candidates.push(holder(targetKey("Gateway", gatewayNs, gatewayName, listener.name)));
  candidates.push(holder(targetKey("Gateway", gatewayNs, gatewayName)));
  const layers = candidates.filter((m): m is AttachedModel<P, S> => m !== undefined);
  for (const m of layers) m.gateways.add(`${gatewayNs}/${gatewayName}`);
  return layers;
}

function refOf(t: TargetRef, namespace: string): ParentRefStatus {
  return {
    group: t.group,
    kind: t.kind,
    namespace,
    name: t.name,
    ...(t.sectionName ? { sectionName: t.sectionName } : {}),
  };
}
