// HTTPRoute vs GRPCRoute on one listener. The spec (GRPCRoute hostnames): when routes of the two
// kinds attach to a listener and their hostnames intersect, exactly one is accepted, the oldest
// (then the first by namespace/name); the other gets Accepted=False on that parent. So a
// virtual host only ever holds routes of one kind, and neither kind's precedence rules have to
// rank the other's matches.
import type { ParentAttachment } from "./attachment.ts";
import type { ListenerModel } from "./gateways.ts";
import { hostnameWithin } from "./hostnames.ts";
import { compareStrings } from "./order.ts";
import type { KindedRoute } from "./rules.ts";

export interface AttachedRoute {
  source: KindedRoute;
  /** "<namespace>/<name>" */
  key: string;
  attachments: ParentAttachment[];
}

const overlaps = (a: readonly string[], b: readonly string[]) =>
  a.some(x => b.some(y => hostnameWithin(x, y) || hostnameWithin(y, x)));

const age = (r: AttachedRoute) => r.source.route.metadata.creationTimestamp || "~";

/** Takes the younger route of each conflicting pair off the listener, and rejects a parentRef
 * left with no listener to serve through. */
export function resolveKindConflicts(routes: readonly AttachedRoute[]): void {
  const ordered = [...routes].sort(
    (a, b) => compareStrings(age(a), age(b)) || compareStrings(a.key, b.key),
  );
  // per listener, the routes kept on it so far, with the names they serve there
  const kept = new Map<ListenerModel, Array<{ route: AttachedRoute; hostnames: string[] }>>();
  for (const route of ordered) {
    const conflicts = new Map<ParentAttachment, string[]>();
    const mine = new Map<ListenerModel, string[]>();
    for (const a of route.attachments) {
      if (a.rejected) continue;
      for (const l of a.allowed)
        mine.set(l, [...(mine.get(l) ?? []), ...(a.hostnames.get(l) ?? [])]);
    }
    for (const [listener, hostnames] of mine) {
      if (hostnames.length === 0) continue;
      const others = kept.get(listener) ?? [];
      const winner = others.find(
        o =>
          o.route.source.kind !== route.source.kind &&
          o.route.source.kind !== "TLSRoute" &&
          route.source.kind !== "TLSRoute" &&
          overlaps(o.hostnames, hostnames),
      );
      if (winner === undefined) {
        kept.set(listener, [...others, { route, hostnames }]);
        continue;
      }
      for (const a of route.attachments) {
        if (a.rejected || !a.allowed.includes(listener)) continue;
        a.hostnames.set(listener, []);
        conflicts.set(a, [
          ...(conflicts.get(a) ?? []),
          `listener ${listener.name} already serves ${winner.route.source.kind} ${winner.route.key} (older) on ${winner.hostnames.join(", ")}`,
        ]);
      }
    }
    for (const [a, messages] of conflicts) {
      if ([...a.hostnames.values()].some(h => h.length > 0)) continue;
      a.rejected = {
        reason: "NotAllowedByListeners",
        message: `${messages.join("; ")}: a listener hostname is served by HTTPRoutes or by GRPCRoutes, not both`,
      };
    }
  }
}
