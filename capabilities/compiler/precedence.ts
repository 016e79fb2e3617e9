// Gateway API match precedence within one virtual host (hostname specificity was already
// decided by choosing the virtual host):
//   Exact path > RegularExpression path (longer first; implementation-specific, as Envoy Gateway)
//   > PathPrefix (longest first) > has method > most headers > most query params
//   > oldest route > route namespace/name alphabetical > rule order > match order.
// GRPCRoute matches (which never share a virtual host with HTTPRoute ones: attachment accepts
// one kind per listener hostname) rank by the GRPCRoute rules instead: Exact before
// RegularExpression before no method match, longest service, longest method, most headers, then the same route order.
import type { RouteMatch } from "../../proxy/config/index.ts";
import type { GrpcRank } from "./grpc-matches.ts";
import { compareStrings } from "./order.ts";

export interface RankedEntry {
  routeId: string;
  match: RouteMatch;
  routeCreated: string;
  routeKey: string;
  ruleIndex: number;
  matchIndex: number;
  grpc?: GrpcRank;
}

const PATH_RANK: Record<RouteMatch["path"]["type"], number> = {
  Exact: 0,
  RegularExpression: 1,
  PathPrefix: 2,
};

function compareMatches(a: RankedEntry, b: RankedEntry): number {
  if (a.grpc !== undefined && b.grpc !== undefined)
    return (
      a.grpc.tier - b.grpc.tier ||
      b.grpc.service - a.grpc.service ||
      b.grpc.method - a.grpc.method ||
      b.match.headers.length - a.match.headers.length ||
      PATH_RANK[a.match.path.type] - PATH_RANK[b.match.path.type]
    );
  return (
    PATH_RANK[a.match.path.type] - PATH_RANK[b.match.path.type] ||
    b.match.path.value.length - a.match.path.value.length ||
    Number(b.match.method !== undefined) - Number(a.match.method !== undefined) ||
    b.match.headers.length - a.match.headers.length ||
    b.match.queryParams.length - a.match.queryParams.length
  );
}

export function comparePrecedence(a: RankedEntry, b: RankedEntry): number {
  return (
    compareMatches(a, b) ||
    // Timestamps are RFC 3339 in UTC, so string order is time order; a route without one
    // (standalone files) sorts after every dated route.
    compareStrings(a.routeCreated || "~", b.routeCreated || "~") ||
    compareStrings(a.routeKey, b.routeKey) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex
  );
}
