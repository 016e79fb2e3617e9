// GRPCRoute matches → config route matches. A gRPC call is `POST /<service>/<method>`, so a
// method match is a path match: Exact service and method is an exact path, a service alone a
// path prefix, anything else a full-match RE2 expression over the path. The GRPCRoute
// precedence (longest service, then longest method, then most headers) is kept beside the match
// as `grpcRank` for the sorter (precedence.ts), since path length says nothing about it. The
// spec counts characters; a pattern's characters say little about what it matches, so (as
// HTTPRoute paths) Exact matches rank before RegularExpression ones, and both before matches
// that name no method, then by those counts.
import type { RouteMatch } from "../../proxy/config/index.ts";
import type { Problem } from "./conditions.ts";
import { checkRegex } from "./regex.ts";
import type { GRPCRouteMatch } from "./snapshot.ts";
import { valueMatches } from "./value-matches.ts";

export interface GrpcRank {
  /** characters of the service the match names (0: any service) */
  service: number;
  /** characters of the method it names (0: any method) */
  method: number;
  /** 0: Exact service and/or method, 1: RegularExpression (after every Exact one, whatever
   * its length), 2: no method match */
  tier: 0 | 1 | 2;
}

export interface GrpcMatch {
  match: RouteMatch;
  rank: GrpcRank;
}

// RE2 syntax for one literal path segment: gRPC names are letters, digits, "_" and "." (the
// spec's validation), of which only "." means something in a pattern
const literal = (s: string) => s.replace(/[.\\+*?()|[\]{}^$]/g, c => `\\${c}`);
const ANY_SEGMENT = "[^/]+";

export function translateGrpcMatch(raw: GRPCRouteMatch, field: string): GrpcMatch | Problem {
  const headers = valueMatches(raw.headers, `${field}.headers`, true);
  if (!Array.isArray(headers)) return headers;
  const method = raw.method;
  const rank: GrpcRank = {
    service: method?.service?.length ?? 0,
    method: method?.method?.length ?? 0,
    tier:
      method?.service === undefined && method?.method === undefined
        ? 2
        : method.type === "RegularExpression"
          ? 1
          : 0,
  };
  const base = { headers, queryParams: [] };
  if (!method || (method.service === undefined && method.method === undefined))
    return { match: { path: { type: "PathPrefix", value: "/" }, ...base }, rank };
  const type = method.type ?? "Exact";
  if (type === "Exact") {
    const { service, method: name } = method;
    if (service !== undefined && name !== undefined)
      return { match: { path: { type: "Exact", value: `/${service}/${name}` }, ...base }, rank };
    if (service !== undefined)
      return { match: { path: { type: "PathPrefix", value: `/${service}` }, ...base }, rank };
    return {
      match: {
        path: { type: "RegularExpression", value: `/${ANY_SEGMENT}/${literal(name!)}` },
        ...base,
      },
      rank,
    };
  }
  if (type !== "RegularExpression")
    return {
      reason: "UnsupportedValue",
      message: `${field}.method.type: ${type} is not supported`,
    };
  for (const key of ["service", "method"] as const) {
    const value = method[key];
    if (value === undefined) continue;
    const error = checkRegex(value);
    if (error)
      return {
        reason: "UnsupportedValue",
        message: `${field}.method.${key}: regular expression ${JSON.stringify(value)} is not valid RE2 (linear-time) syntax: ${error}`,
      };
  }
  const service = method.service === undefined ? ANY_SEGMENT : `(?:${method.service})`;
  const name = method.method === undefined ? ANY_SEGMENT : `(?:${method.method})`;
  return {
    match: { path: { type: "RegularExpression", value: `/${service}/${name}` }, ...base },
    rank,
  };
}
