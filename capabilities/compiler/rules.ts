// One HTTPRoute's or GRPCRoute's rules → config routes and their matches, with the problems that make a rule
// unusable (dropped, reported as PartiallyInvalid / Accepted=False) or its references unresolved.
import type { Route, RouteMatch, WeightedBackend } from "../../proxy/config/index.ts";
import type { BackendResolver, RouteKind } from "./backends.ts";
import { isProblem, type Problem } from "./conditions.ts";
import { parseDuration } from "./durations.ts";
import { translateFilters } from "./filters.ts";
import { PLUGINS_ANNOTATION, PluginIndex } from "./plugins.ts";
import type { GrpcRank } from "./grpc-matches.ts";
import { translateGrpcMatch } from "./grpc-matches.ts";
import { checkRegex } from "./regex.ts";
import type {
  GRPCRoute,
  GRPCRouteMatch,
  HTTPRoute,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  TLSRoute,
} from "./snapshot.ts";
import { valueMatches } from "./value-matches.ts";

/** A route of either kind, tagged: the kinds share attachment, filters, backends and status. */
export type KindedRoute =
  | { kind: "HTTPRoute"; route: HTTPRoute }
  | { kind: "GRPCRoute"; route: GRPCRoute }
  | { kind: "TLSRoute"; route: TLSRoute };

export interface CompiledRule {
  index: number;
  route: Route;
  matches: RouteMatch[];
  /** a GRPCRoute rule's precedence per match (same order as matches) */
  grpcRanks?: GrpcRank[];
  // The rule is invalid (reported in status) but its matches are routable: they answer 500, so
  // its requests never fall through to a less specific rule (one that, say, lacks its auth).
  dropped?: boolean;
}

export interface RouteTranslation {
  rules: CompiledRule[];
  invalid: Problem[];
  unresolved: Problem[];
  /** BackendTLSPolicies ("<namespace>/<name>") governing this route's backends */
  tlsPolicies: Set<string>;
}

export function normalizePrefix(value: string): string {
  // The spec ignores a trailing "/" on a PathPrefix: "/foo/" and "/foo" are the same prefix.
  return value.length > 1 && value.endsWith("/") ? value.replace(/\/+$/, "") || "/" : value;
}

function translateMatch(match: HTTPRouteMatch, field: string): RouteMatch | Problem {
  const pathType = match.path?.type ?? "PathPrefix";
  const pathValue = match.path?.value ?? "/";
  let path: RouteMatch["path"];
  if (pathType === "Exact" || pathType === "PathPrefix") {
    if (!pathValue.startsWith("/"))
      return {
        reason: "UnsupportedValue",
        message: `${field}.path.value: ${JSON.stringify(pathValue)} must start with "/"`,
      };
    path =
      pathType === "Exact"
        ? { type: "Exact", value: pathValue }
        : { type: "PathPrefix", value: normalizePrefix(pathValue) };
  } else if (pathType === "RegularExpression") {
    const error = checkRegex(pathValue);
    if (error)
      return {
        reason: "UnsupportedValue",
        message: `${field}.path.value: regular expression ${JSON.stringify(pathValue)} is not valid RE2 (linear-time) syntax: ${error}`,
      };
    path = { type: "RegularExpression", value: pathValue };
  } else {
    return {
      reason: "UnsupportedValue",
      message: `${field}.path.type: ${pathType} is not supported`,
    };
  }
  const headers = valueMatches(match.headers, `${field}.headers`, true);
  if (!Array.isArray(headers)) return headers;
  const queryParams = valueMatches(match.queryParams, `${field}.queryParams`, false);
  if (!Array.isArray(queryParams)) return queryParams;
  return {
    path,
    headers,
    queryParams,
    ...(match.method ? { method: match.method.toUpperCase() } : {}),
  };
}

function translateTimeouts(rule: HTTPRouteRule, field: string): Route["timeouts"] | Problem {
  const timeouts: Route["timeouts"] = {};
  for (const key of ["request", "backendRequest"] as const) {
    const raw = rule.timeouts?.[key];
    if (raw === undefined) continue;
    const ms = parseDuration(raw);
    if (ms === undefined)
      return {
        reason: "UnsupportedValue",
        message: `${field}.timeouts.${key}: ${JSON.stringify(raw)} is not a duration like 10s or 1m30s`,
      };
    timeouts[key === "request" ? "requestMs" : "backendRequestMs"] = ms;
  }
  const { requestMs, backendRequestMs } = timeouts;
  // 0 disables a timeout; otherwise one backend attempt cannot outlast the whole request.
  if (requestMs && backendRequestMs && backendRequestMs > requestMs) {
    return {
      reason: "UnsupportedValue",
      message: `${field}.timeouts: backendRequest (${rule.timeouts?.backendRequest}) must not exceed request (${rule.timeouts?.request})`,
    };
  }
  return timeouts;
}

function translateRetry(rule: HTTPRouteRule, field: string): Route["retry"] | Problem | undefined {
  const retry = rule.retry;
  if (!retry) return undefined;
  let backoffMs: number | undefined;
  if (retry.backoff !== undefined) {
    backoffMs = parseDuration(retry.backoff);
    if (backoffMs === undefined)
      return {
        reason: "UnsupportedValue",
        message: `${field}.retry.backoff: ${JSON.stringify(retry.backoff)} is not a duration`,
      };
  }
  return {
    attempts: retry.attempts ?? 1,
    codes: [...(retry.codes ?? [])].sort((a, b) => a - b),
    ...(backoffMs === undefined ? {} : { backoffMs }),
  };
}

export function translateRules(
  route: HTTPRoute,
  backends: BackendResolver,
  plugins: PluginIndex,
): RouteTranslation {
  return translateKindedRules({ kind: "HTTPRoute", route }, backends, plugins);
}

// One rule of either kind, with what differs: how a match translates, and (HTTPRoute only)
// timeouts and retries.
interface RuleShape {
  name?: string;
  matches: Array<HTTPRouteMatch | GRPCRouteMatch>;
  filters?: readonly HTTPRouteFilter[];
  backendRefs?: ReadonlyArray<
    NonNullable<HTTPRouteRule["backendRefs"]>[number] & { filters?: readonly HTTPRouteFilter[] }
  >;
  http?: HTTPRouteRule;
}

function ruleShapes(source: KindedRoute): RuleShape[] {
  if (source.kind === "HTTPRoute") {
    const rules = source.route.spec.rules?.length ? source.route.spec.rules : [{}];
    return rules.map(rule => ({
      ...(rule.name ? { name: rule.name } : {}),
      matches: rule.matches?.length ? rule.matches : [{}],
      ...(rule.filters ? { filters: rule.filters } : {}),
      ...(rule.backendRefs ? { backendRefs: rule.backendRefs } : {}),
      http: rule,
    }));
  }
  if (source.kind === "TLSRoute")
    // one rule, no matches (the SNI chose the route), no filters: only where the bytes go
    return source.route.spec.rules.map(rule => ({
      ...(rule.name ? { name: rule.name } : {}),
      matches: [],
      backendRefs: rule.backendRefs,
    }));
  const rules = source.route.spec.rules?.length ? source.route.spec.rules : [{}];
  // GRPCRoute filters are a subset of HTTPRoute's, with the same fields
  return rules.map(rule => ({
    ...(rule.name ? { name: rule.name } : {}),
    matches: rule.matches?.length ? rule.matches : [{}],
    ...(rule.filters ? { filters: rule.filters as HTTPRouteFilter[] } : {}),
    ...(rule.backendRefs
      ? {
          backendRefs: rule.backendRefs.map(ref => ({
            ...ref,
            ...(ref.filters ? { filters: ref.filters as HTTPRouteFilter[] } : {}),
          })),
        }
      : {}),
  }));
}

export function translateKindedRules(
  source: KindedRoute,
  backends: BackendResolver,
  plugins: PluginIndex,
): RouteTranslation {
  const { route, kind } = source;
  const routeKind: RouteKind = kind;
  const namespace = route.metadata.namespace ?? "default";
  const key = `${namespace}/${route.metadata.name}`;
  const result: RouteTranslation = {
    rules: [],
    invalid: [],
    unresolved: [],
    tlsPolicies: new Set(),
  };

  // Plugins named by the compatibility annotation run first, on every rule.
  const annotationFilters: Route["filters"] = [];
  let annotationFailsClosed = false;
  const annotation = route.metadata.annotations?.[PLUGINS_ANNOTATION];
  if (annotation !== undefined) {
    const parsed = PluginIndex.parseAnnotation(annotation);
    if (parsed.problem) {
      result.unresolved.push({
        reason: "InvalidPluginAnnotation",
        message: `metadata.annotations: ${parsed.problem}`,
      });
      annotationFailsClosed = true;
    }
    for (const name of parsed.names ?? []) {
      const lookup = plugins.resolve(
        namespace,
        name,
        `metadata.annotations[${PLUGINS_ANNOTATION}]`,
      );
      if (lookup.problem) {
        result.unresolved.push(lookup.problem);
        annotationFailsClosed = true;
      } else annotationFilters.push({ type: "Plugin", pluginId: lookup.id });
    }
  }

  for (const [index, rule] of ruleShapes(source).entries()) {
    const field = `spec.rules[${index}]`;
    const rawMatches = rule.matches;
    const matches: RouteMatch[] = [];
    const grpcRanks: GrpcRank[] = [];
    let problem: Problem | undefined;
    for (const [m, raw] of rawMatches.entries()) {
      const mField = `${field}.matches[${m}]`;
      let translated: RouteMatch | Problem;
      if (kind === "GRPCRoute") {
        const grpc = translateGrpcMatch(raw as GRPCRouteMatch, mField);
        if (!isProblem(grpc)) grpcRanks.push(grpc.rank);
        translated = isProblem(grpc) ? grpc : grpc.match;
      } else translated = translateMatch(raw as HTTPRouteMatch, mField);
      if (isProblem(translated)) {
        problem = translated;
        break;
      }
      matches.push(translated);
    }
    const ranks = kind === "GRPCRoute" ? { grpcRanks } : {};
    const timeouts = problem ? undefined : rule.http ? translateTimeouts(rule.http, field) : {};
    if (isProblem(timeouts)) problem = timeouts;
    const retry = problem || !rule.http ? undefined : translateRetry(rule.http, field);
    if (isProblem(retry)) problem = retry;
    const ctx = {
      namespace,
      backends,
      plugins,
      routeKind,
      allMatchesArePrefix: matches.every(m => m.path.type === "PathPrefix"),
    };
    const filters = problem
      ? undefined
      : translateFilters(rule.filters, { ...ctx, field, level: "rule" });
    if (filters?.invalid) problem = filters.invalid;

    const weighted: WeightedBackend[] = [];
    const failClosed = annotationFailsClosed || (filters?.failClosed ?? false);
    for (const [b, ref] of (problem ? [] : (rule.backendRefs ?? [])).entries()) {
      const refField = `${field}.backendRefs[${b}]`;
      const backendFilters = translateFilters(ref.filters, {
        ...ctx,
        field: refField,
        level: "backend",
      });
      if (backendFilters.invalid) {
        problem = backendFilters.invalid;
        break;
      }
      result.unresolved.push(...backendFilters.unresolved);
      const resolution = backends.resolve(ref, namespace, refField, routeKind);
      for (const policy of resolution.policies ?? []) result.tlsPolicies.add(policy);
      // a refused backend is the BackendTLSPolicy's problem, reported on the policy
      if (resolution.problem && !resolution.refused) result.unresolved.push(resolution.problem);
      weighted.push({
        clusterId: resolution.cluster?.id ?? null,
        weight: ref.weight ?? 1,
        // A backend whose own ExtensionRef cannot be resolved answers 500 for its share.
        filters: backendFilters.failClosed ? [] : backendFilters.filters,
      });
      if (backendFilters.failClosed) weighted[weighted.length - 1]!.clusterId = null;
    }
    const id = `${key}/rule/${index}`;
    const source = {
      namespace,
      name: route.metadata.name,
      rule: index,
      ...(rule.name ? { ruleName: rule.name } : {}),
    };
    if (problem || !filters || isProblem(timeouts) || timeouts === undefined || isProblem(retry)) {
      result.invalid.push(
        problem ?? { reason: "UnsupportedValue", message: `${field}: invalid rule` },
      );
      if (matches.length === rawMatches.length) {
        result.rules.push({
          index,
          matches,
          ...ranks,
          dropped: true,
          route: {
            id,
            source,
            filters: [],
            backends: [{ clusterId: null, weight: 1, filters: [] }],
            timeouts: {},
          },
        });
      }
      continue;
    }
    result.unresolved.push(...filters.unresolved);
    const routeFilters = [...annotationFilters, ...filters.filters];
    result.rules.push({
      index,
      matches,
      ...ranks,
      route: {
        id,
        source,
        // A filter the spec forbids skipping could not be resolved: answer 500 instead of
        // serving the request without it.
        filters: failClosed ? [] : routeFilters,
        backends: failClosed ? [{ clusterId: null, weight: 1, filters: [] }] : weighted,
        timeouts,
        ...(retry ? { retry } : {}),
      },
    });
  }
  return result;
}
