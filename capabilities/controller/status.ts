// Compiled statuses → the status stanza to write on each object, merged with what is there:
// a condition keeps its lastTransitionTime while its status does not change, and on HTTPRoutes
// the parent entries of other controllers are kept (status.parents is an atomic list), as are
// other controllers' ancestor entries on BackendTLSPolicies.
import type { Condition, ObjectStatus } from "../compiler/index.ts";

type Json = Record<string, unknown>;

export function mergeConditions(
  existing: readonly Condition[] | undefined,
  desired: readonly Condition[],
): Condition[] {
  return desired.map(condition => {
    const previous = existing?.find(c => c.type === condition.type);
    return previous && previous.status === condition.status
      ? { ...condition, lastTransitionTime: previous.lastTransitionTime }
      : condition;
  });
}

function sameParentRef(a: Json, b: Json): boolean {
  const fields = ["group", "kind", "namespace", "name", "sectionName", "port"];
  const norm = (ref: Json, f: string) =>
    f === "group"
      ? (ref[f] ?? "gateway.networking.k8s.io")
      : f === "kind"
        ? (ref[f] ?? "Gateway")
        : ref[f];
  return fields.every(f => norm(a, f) === norm(b, f));
}

// `compiled` is undefined when the compiler has nothing to say about the object any more (an
// HTTPRoute that no longer references our Gateways): our entries are then removed.
export function desiredStatus(
  kind: ObjectStatus["kind"],
  existing: Json | undefined,
  compiled: ObjectStatus | undefined,
  controllerName: string,
): Json | undefined {
  const current = (existing ?? {}) as Json;
  switch (kind) {
    case "HTTPRoute":
    case "GRPCRoute":
    case "TLSRoute":
    case "BackendTLSPolicy":
    case "BackendTrafficPolicy":
    case "ClientTrafficPolicy":
    case "SecurityPolicy": {
      // both lists are atomic and shared with other controllers: ours are replaced, theirs kept
      const policy = kind.endsWith("Policy");
      const [list, ref] = policy ? ["ancestors", "ancestorRef"] : ["parents", "parentRef"];
      const entries = (current[list] as Json[] | undefined) ?? [];
      const others = entries.filter(p => p.controllerName !== controllerName);
      const ours: Array<{ conditions: Condition[] } & Json> =
        compiled !== undefined && "parents" in compiled.status
          ? compiled.status.parents.map(p => ({ ...p }) as unknown as (typeof ours)[number])
          : compiled !== undefined && "ancestors" in compiled.status
            ? compiled.status.ancestors.map(a => ({ ...a }) as unknown as (typeof ours)[number])
            : [];
      if (!compiled && others.length === entries.length) return undefined;
      return {
        ...current,
        [list]: [
          ...others,
          ...ours.map(entry => {
            const previous = entries.find(
              p =>
                p.controllerName === controllerName &&
                sameParentRef(p[ref] as Json, entry[ref] as Json),
            );
            return {
              ...entry,
              conditions: mergeConditions(
                previous?.conditions as Condition[] | undefined,
                entry.conditions,
              ),
            };
          }),
        ],
      };
    }
    case "Gateway":
    case "ListenerSet": {
      if (compiled?.kind !== kind) return undefined;
      const listeners = (current.listeners as Json[] | undefined) ?? [];
      return {
        ...("addresses" in compiled.status && compiled.status.addresses
          ? { addresses: compiled.status.addresses }
          : {}),
        ...("attachedListenerSets" in compiled.status && compiled.status.attachedListenerSets
          ? { attachedListenerSets: compiled.status.attachedListenerSets }
          : {}),
        conditions: mergeConditions(
          current.conditions as Condition[] | undefined,
          compiled.status.conditions,
        ),
        listeners: compiled.status.listeners.map(listener => ({
          ...listener,
          conditions: mergeConditions(
            listeners.find(l => l.name === listener.name)?.conditions as Condition[] | undefined,
            listener.conditions,
          ),
        })),
      };
    }
    case "GatewayClass":
    case "RautaPlugin": {
      if (!compiled || compiled.kind !== kind) return undefined;
      // a digest we no longer know must not linger from an earlier module
      const { digest: _previous, ...kept } = current;
      return {
        ...(kind === "RautaPlugin" ? kept : current),
        ...compiled.status,
        conditions: mergeConditions(
          current.conditions as Condition[] | undefined,
          compiled.status.conditions,
        ),
      };
    }
  }
}

// Deep equality on JSON data, key order ignored: decides whether a status write is needed.
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const [ka, kb] = [
    Object.keys(a).filter(k => (a as Json)[k] !== undefined),
    Object.keys(b).filter(k => (b as Json)[k] !== undefined),
  ];
  return ka.length === kb.length && ka.every(k => jsonEqual((a as Json)[k], (b as Json)[k]));
}

/** "<namespace>/<name>" of an object status ("" namespace for cluster-scoped kinds). */
export function statusKey(s: ObjectStatus): string {
  return `${"namespace" in s ? s.namespace : ""}/${s.name}`;
}

/**
 * Programmed=True must mean the proxy serves it: holds Programmed True at Unknown/Pending (the
 * spec's reason for "not yet") for each Gateway the proxies have not caught up with.
 * `caughtUp` answers per Gateway (statusKey): a Gateway whose own configuration did not change
 * stays Programmed while other objects churn.
 */
export function holdProgrammed(
  statuses: ObjectStatus[],
  caughtUp: (gateway: string) => boolean,
): ObjectStatus[] {
  const pending = (c: Condition): Condition =>
    c.type === "Programmed" && c.status === "True"
      ? {
          ...c,
          status: "Unknown",
          reason: "Pending",
          message: "waiting for the proxy to load this configuration",
        }
      : c;
  return statuses.map(s =>
    s.kind === "Gateway" && !caughtUp(statusKey(s))
      ? {
          ...s,
          status: {
            ...s.status,
            conditions: s.status.conditions.map(pending),
            listeners: s.status.listeners.map(l => ({
              ...l,
              conditions: l.conditions.map(pending),
            })),
          },
        }
      : s,
  );
}
