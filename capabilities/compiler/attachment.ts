// HTTPRoute and GRPCRoute parentRefs → the listeners a route attaches to, and the reason when it
// cannot.
import type { Problem } from "./conditions.ts";
import type { GatewayModel, ListenerModel, ListenerSetModel } from "./gateways.ts";
import { intersectHostnames } from "./hostnames.ts";
import { GATEWAY_GROUP, namespacePolicyAdmits } from "./references.ts";
import type { KindedRoute } from "./rules.ts";
import type { Namespace, ParentRef } from "./snapshot.ts";
import type { ParentRefStatus } from "./types.ts";

export interface ParentAttachment {
  parentRef: ParentRefStatus;
  gateway: GatewayModel;
  // Listeners selected by the parentRef and allowing the route (these count attachedRoutes).
  allowed: ListenerModel[];
  // Per allowed listener, the hostnames the route serves through it (empty: none intersect).
  hostnames: Map<ListenerModel, string[]>;
  rejected?: Problem;
}

function namespaceAllowed(
  listener: ListenerModel,
  routeNamespace: string,
  namespaces: ReadonlyMap<string, Namespace>,
): boolean {
  // Same: the namespace of whoever declared the listener (a ListenerSet's own, not its Gateway's)
  return namespacePolicyAdmits(
    listener.spec.allowedRoutes?.namespaces,
    "Same",
    routeNamespace,
    listener.owner.namespace,
    namespaces,
  );
}

function kindAllowed(listener: ListenerModel, kind: string): boolean {
  return listener.supportedKinds.some(k => k.group === GATEWAY_GROUP && k.kind === kind);
}

export function parentRefStatus(ref: ParentRef): ParentRefStatus {
  return {
    group: ref.group ?? GATEWAY_GROUP,
    kind: ref.kind ?? "Gateway",
    ...(ref.namespace ? { namespace: ref.namespace } : {}),
    name: ref.name,
    ...(ref.sectionName ? { sectionName: ref.sectionName } : {}),
    ...(ref.port ? { port: ref.port } : {}),
  };
}

export function attachRoute(
  source: KindedRoute,
  gateways: ReadonlyMap<string, GatewayModel>,
  namespaces: ReadonlyMap<string, Namespace>,
  // Our Gateways whose GatewayClass is not accepted: routes get a status, never an attachment.
  classNotAccepted: ReadonlyMap<string, GatewayModel> = new Map(),
  // ListenerSets whose parent is one of our Gateways, by "<namespace>/<name>"
  listenerSets: ReadonlyMap<string, ListenerSetModel> = new Map(),
): ParentAttachment[] {
  const { route, kind } = source;
  const routeNamespace = route.metadata.namespace ?? "default";
  const routeHostnames = route.spec.hostnames ?? [];
  const result: ParentAttachment[] = [];
  for (const ref of route.spec.parentRefs ?? []) {
    if ((ref.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP) continue;
    const key = `${ref.namespace ?? routeNamespace}/${ref.name}`;
    if (ref.kind === "ListenerSet") {
      const set = listenerSets.get(key);
      // not a ListenerSet of one of our Gateways: another controller reports on this parentRef
      if (set)
        result.push(
          attachToListeners(
            ref,
            kind,
            set.gateway,
            set,
            routeNamespace,
            routeHostnames,
            namespaces,
          ),
        );
      continue;
    }
    if ((ref.kind ?? "Gateway") !== "Gateway") continue;
    const gateway = gateways.get(key);
    const inactive = classNotAccepted.get(key);
    if (!gateway && inactive) {
      const message = `Gateway ${key} is not accepted: its GatewayClass ${inactive.gateway.spec.gatewayClassName} is not accepted`;
      result.push({
        parentRef: parentRefStatus(ref),
        gateway: inactive,
        allowed: [],
        hostnames: new Map(),
        rejected: { reason: "NoMatchingParent", message },
      });
      continue;
    }
    // Not one of our Gateways: another controller reports on this parentRef.
    if (!gateway) continue;
    result.push(
      attachToListeners(ref, kind, gateway, undefined, routeNamespace, routeHostnames, namespaces),
    );
  }
  return result;
}

// The listeners of a Gateway (its own) or of one of its ListenerSets that `ref` selects and
// that take the route.
function attachToListeners(
  ref: ParentRef,
  kind: KindedRoute["kind"],
  gateway: GatewayModel,
  set: ListenerSetModel | undefined,
  routeNamespace: string,
  routeHostnames: readonly string[],
  namespaces: ReadonlyMap<string, Namespace>,
): ParentAttachment {
  const attachment: ParentAttachment = {
    parentRef: parentRefStatus(ref),
    gateway,
    allowed: [],
    hostnames: new Map(),
  };
  const parent = set ? `ListenerSet ${set.key}` : `Gateway ${gateway.key}`;
  if (set?.notAllowed) {
    attachment.rejected = {
      reason: "NotAllowedByListeners",
      message: `${parent}: ${set.notAllowed.message}`,
    };
    return attachment;
  }
  const selected = (set ? set.listeners : gateway.listeners).filter(
    l =>
      (ref.sectionName === undefined || l.name === ref.sectionName) &&
      (ref.port === undefined || l.port === ref.port),
  );
  if (selected.length === 0) {
    const wanted = [
      ref.sectionName && `sectionName ${ref.sectionName}`,
      ref.port && `port ${ref.port}`,
    ]
      .filter(Boolean)
      .join(" and ");
    attachment.rejected = {
      reason: "NoMatchingParent",
      message: `${parent} has no listener with ${wanted}`,
    };
    return attachment;
  }
  attachment.allowed = selected.filter(
    l => kindAllowed(l, kind) && namespaceAllowed(l, routeNamespace, namespaces),
  );
  if (attachment.allowed.length === 0) {
    const kindOk = selected.some(l => kindAllowed(l, kind));
    attachment.rejected = {
      reason: "NotAllowedByListeners",
      message: kindOk
        ? `listeners ${selected.map(l => l.name).join(", ")} of ${parent} do not allow ${kind}s from namespace ${routeNamespace} (see their allowedRoutes.namespaces)`
        : `listeners ${selected.map(l => l.name).join(", ")} of ${parent} do not accept ${kind}s (see their protocol and allowedRoutes.kinds)`,
    };
    return attachment;
  }
  for (const listener of attachment.allowed)
    attachment.hostnames.set(listener, intersectHostnames(listener.hostname, [...routeHostnames]));
  if ([...attachment.hostnames.values()].every(h => h.length === 0)) {
    attachment.rejected = {
      reason: "NoMatchingListenerHostname",
      message: `none of the route's hostnames (${routeHostnames.join(", ")}) match the hostnames of listeners ${attachment.allowed.map(l => `${l.name} (${l.hostname ?? "any"})`).join(", ")}`,
    };
  }
  return attachment;
}
