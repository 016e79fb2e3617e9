import type { Namespace, ReferenceGrant } from "./snapshot.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

export interface ReferenceFrom {
  group: string;
  kind: string;
  namespace: string;
}
export interface ReferenceTo {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

// A reference within one namespace is always allowed; across namespaces it needs a
// ReferenceGrant in the target namespace that lists the source (group, kind, namespace) in
// `from` and the target (group, kind, optionally name) in `to`.
export function referenceAllowed(
  from: ReferenceFrom,
  to: ReferenceTo,
  grants: readonly ReferenceGrant[],
): boolean {
  if (from.namespace === to.namespace) return true;
  return grants.some(
    grant =>
      grant.metadata.namespace === to.namespace &&
      grant.spec?.from.some(
        f => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace,
      ) === true &&
      grant.spec?.to.some(
        t => t.group === to.group && t.kind === to.kind && (!t.name || t.name === to.name),
      ) === true,
  );
}

export interface LabelSelector {
  matchLabels?: Record<string, string | undefined>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const ok =
      operator === "In"
        ? has && values.includes(labels[key]!)
        : operator === "NotIn"
          ? !has || !values.includes(labels[key]!)
          : operator === "Exists"
            ? has
            : operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

// Namespaces that are referenced but absent from the snapshot still carry the label Kubernetes
// puts on every namespace, so selectors on kubernetes.io/metadata.name keep working offline.
export function namespaceLabels(
  name: string,
  namespaces: ReadonlyMap<string, Namespace>,
): Record<string, string> {
  return { ...(namespaces.get(name)?.metadata.labels ?? {}), "kubernetes.io/metadata.name": name };
}

/**
 * The Gateway API's "namespaces: {from, selector}" rule (a listener's allowedRoutes, a
 * Gateway's allowedListeners): whether `candidate` may attach to an object in `home`.
 */
export function namespacePolicyAdmits(
  policy: { from?: string; selector?: LabelSelector } | undefined,
  defaultFrom: string,
  candidate: string,
  home: string,
  namespaces: ReadonlyMap<string, Namespace>,
): boolean {
  const from = policy?.from ?? defaultFrom;
  if (from === "All") return true;
  if (from === "Same") return candidate === home;
  if (from === "Selector")
    return (
      policy?.selector !== undefined &&
      selectorMatches(policy.selector, namespaceLabels(candidate, namespaces))
    );
  return false;
}
