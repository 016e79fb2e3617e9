// HTTPRoute filters → config filters. Problems that make a rule unusable are `invalid` (the rule
// is dropped); references that do not resolve are `unresolved` (ResolvedRefs=False) and make the
// rule answer 500 where the spec says a filter must not be skipped.
import type { Filter, HeaderModifier, PathModifier } from "../../proxy/config/index.ts";
import type { BackendResolver, RouteKind } from "./backends.ts";
import { isProblem, type Problem } from "./conditions.ts";
import type { PluginIndex } from "./plugins.ts";
import type { HTTPRouteFilter } from "./snapshot.ts";

export const RAUTA_GROUP = "rauta.io";

export interface FilterContext {
  namespace: string;
  field: string;
  backends: BackendResolver;
  plugins: PluginIndex;
  /** the kind of the route the filters belong to (a mirror of a GRPCRoute speaks gRPC) */
  routeKind?: RouteKind;
  // Whether every match of the rule is a PathPrefix match (ReplacePrefixMatch needs one).
  allMatchesArePrefix: boolean;
  // Backend-level filters support fewer types than rule-level ones.
  level: "rule" | "backend";
}

export interface FilterTranslation {
  filters: Filter[];
  invalid?: Problem;
  unresolved: Problem[];
  // An ExtensionRef that cannot be resolved: the spec says requests it would have handled get 500.
  failClosed: boolean;
}

const REPEATABLE = new Set(["RequestMirror", "ExtensionRef"]);
// how long the gateway waits for an ExternalAuth service (Envoy's ext_authz default is 200 ms;
// Envoy Gateway's 10 s suits auth services that call identity providers)
const EXTERNAL_AUTH_TIMEOUT_MS = 10_000;
const BACKEND_LEVEL = new Set([
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestMirror",
  "ExtensionRef",
]);

type RawHeaderModifier = {
  set?: Array<{ name: string; value: string }>;
  add?: Array<{ name: string; value: string }>;
  remove?: string[];
};

function headerModifier(raw: RawHeaderModifier | undefined): HeaderModifier {
  return {
    set: (raw?.set ?? []).map(h => ({ name: h.name, value: h.value })),
    add: (raw?.add ?? []).map(h => ({ name: h.name, value: h.value })),
    remove: [...(raw?.remove ?? [])],
  };
}

// One header may be named once across set, add and remove (case-insensitively), or the
// outcome would depend on the order the data plane applies them in.
function headerModifierProblem(modifier: HeaderModifier, field: string): Problem | undefined {
  const seen = new Set<string>();
  for (const name of [
    ...modifier.set.map(h => h.name),
    ...modifier.add.map(h => h.name),
    ...modifier.remove,
  ]) {
    const key = name.toLowerCase();
    if (seen.has(key))
      return {
        reason: "UnsupportedValue",
        message: `${field}: header ${name} is named more than once across set, add and remove`,
      };
    seen.add(key);
  }
  return undefined;
}

type RawPathModifier = { type: string; replaceFullPath?: string; replacePrefixMatch?: string };

function pathModifier(
  raw: RawPathModifier | undefined,
  ctx: FilterContext,
  field: string,
): PathModifier | Problem | undefined {
  if (!raw) return undefined;
  if (raw.type === "ReplaceFullPath") {
    if (raw.replaceFullPath === undefined)
      return {
        reason: "UnsupportedValue",
        message: `${field}.path: replaceFullPath is required for type ReplaceFullPath`,
      };
    return { type: "ReplaceFullPath", value: raw.replaceFullPath };
  }
  if (raw.type === "ReplacePrefixMatch") {
    if (raw.replacePrefixMatch === undefined)
      return {
        reason: "UnsupportedValue",
        message: `${field}.path: replacePrefixMatch is required for type ReplacePrefixMatch`,
      };
    if (!ctx.allMatchesArePrefix) {
      return {
        reason: "UnsupportedValue",
        message: `${field}.path: ReplacePrefixMatch needs every match of the rule to be a PathPrefix match`,
      };
    }
    return { type: "ReplacePrefixMatch", value: raw.replacePrefixMatch };
  }
  return {
    reason: "UnsupportedValue",
    message: `${field}.path: type ${raw.type} is not supported`,
  };
}

export function translateFilters(
  raw: readonly HTTPRouteFilter[] | undefined,
  ctx: FilterContext,
): FilterTranslation {
  const result: FilterTranslation = { filters: [], unresolved: [], failClosed: false };
  const seen = new Set<string>();
  const fail = (problem: Problem): FilterTranslation => ({
    ...result,
    filters: [],
    invalid: problem,
  });
  for (const [index, filter] of (raw ?? []).entries()) {
    const field = `${ctx.field}.filters[${index}]`;
    if (ctx.level === "backend" && !BACKEND_LEVEL.has(filter.type)) {
      return fail({
        reason: "UnsupportedValue",
        message: `${field}: ${filter.type} is not supported on a backendRef; move it to the rule's filters`,
      });
    }
    if (seen.has(filter.type) && !REPEATABLE.has(filter.type)) {
      return fail({
        reason: "UnsupportedValue",
        message: `${field}: ${filter.type} may appear only once per rule`,
      });
    }
    seen.add(filter.type);
    switch (filter.type) {
      case "RequestHeaderModifier":
      case "ResponseHeaderModifier": {
        const source =
          filter.type === "RequestHeaderModifier"
            ? filter.requestHeaderModifier
            : filter.responseHeaderModifier;
        const modifier = headerModifier(source);
        const problem = headerModifierProblem(modifier, field);
        if (problem) return fail(problem);
        result.filters.push({ type: filter.type, ...modifier });
        break;
      }
      case "RequestRedirect": {
        const redirect = filter.requestRedirect ?? {};
        const path = pathModifier(redirect.path, ctx, field);
        if (isProblem(path)) return fail(path);
        const statusCode = redirect.statusCode ?? 302;
        if (
          statusCode !== 301 &&
          statusCode !== 302 &&
          statusCode !== 303 &&
          statusCode !== 307 &&
          statusCode !== 308
        ) {
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: statusCode ${statusCode} is not a redirect status (301, 302, 303, 307, 308)`,
          });
        }
        const scheme = redirect.scheme;
        if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: scheme ${scheme} is not supported (http, https)`,
          });
        }
        result.filters.push({
          type: "RequestRedirect",
          statusCode,
          ...(scheme ? { scheme } : {}),
          ...(redirect.hostname ? { hostname: redirect.hostname } : {}),
          ...(redirect.port ? { port: redirect.port } : {}),
          ...(path ? { path } : {}),
        });
        break;
      }
      case "URLRewrite": {
        const rewrite = filter.urlRewrite ?? {};
        const path = pathModifier(rewrite.path, ctx, field);
        if (isProblem(path)) return fail(path);
        result.filters.push({
          type: "URLRewrite",
          ...(rewrite.hostname ? { hostname: rewrite.hostname } : {}),
          ...(path ? { path } : {}),
        });
        break;
      }
      case "RequestMirror": {
        const mirror = filter.requestMirror;
        if (!mirror)
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: requestMirror is required for type RequestMirror`,
          });
        const resolution = ctx.backends.resolve(
          mirror.backendRef,
          ctx.namespace,
          `${field}.requestMirror.backendRef`,
          ctx.routeKind,
        );
        if (!resolution.cluster) {
          // A mirror that cannot be resolved is reported and left out: mirroring must never
          // change what the client gets. (A refused one is reported on its BackendTLSPolicy.)
          if (!resolution.refused) result.unresolved.push(resolution.problem);
          break;
        }
        const [numerator, denominator] = mirror.fraction
          ? [mirror.fraction.numerator, mirror.fraction.denominator ?? 100]
          : mirror.percent !== undefined
            ? [mirror.percent, 100]
            : [1, 1];
        if (numerator > denominator) {
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: requestMirror.fraction numerator ${numerator} exceeds denominator ${denominator}`,
          });
        }
        result.filters.push({
          type: "RequestMirror",
          clusterId: resolution.cluster.id,
          numerator,
          denominator,
        });
        break;
      }
      case "ExternalAuth": {
        const auth = filter.externalAuth;
        if (!auth)
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: externalAuth is required for type ExternalAuth`,
          });
        if (auth.protocol !== "HTTP" && auth.protocol !== "GRPC")
          return fail({
            reason: "UnsupportedValue",
            message: `${field}: externalAuth protocol ${String(auth.protocol)} is not supported by RAUTA (HTTP and GRPC are); the rule is not served rather than served without its auth`,
          });
        const grpc = auth.protocol === "GRPC";
        const resolution = ctx.backends.resolve(
          auth.backendRef,
          ctx.namespace,
          `${field}.externalAuth.backendRef`,
          ctx.routeKind,
          // an ext_authz service speaks gRPC, whatever route asks it
          grpc ? "GRPCRoute" : ctx.routeKind,
        );
        if (!resolution.cluster) {
          // the spec: problems reaching the auth service fail closed (500 for the rule's requests)
          if (!resolution.refused) result.unresolved.push(resolution.problem);
          result.failClosed = true;
          break;
        }
        result.filters.push({
          type: "ExternalAuth",
          clusterId: resolution.cluster.id,
          ...(grpc ? { protocol: "GRPC" as const } : {}),
          pathPrefix: grpc ? "" : (auth.http?.path ?? ""),
          allowedHeaders: (
            (grpc ? auth.grpc?.allowedHeaders : auth.http?.allowedHeaders) ?? []
          ).map(h => h.toLowerCase()),
          allowedResponseHeaders: grpc
            ? []
            : (auth.http?.allowedResponseHeaders ?? []).map(h => h.toLowerCase()),
          timeoutMs: EXTERNAL_AUTH_TIMEOUT_MS,
          ...((auth.forwardBody?.maxSize ?? 0) > 0
            ? { forwardBodyBytes: auth.forwardBody!.maxSize! }
            : {}),
        });
        break;
      }
      case "CORS": {
        const cors = filter.cors ?? {};
        result.filters.push({
          type: "CORS",
          allowOrigins: [...(cors.allowOrigins ?? [])],
          allowMethods: [...(cors.allowMethods ?? [])],
          allowHeaders: [...(cors.allowHeaders ?? [])],
          exposeHeaders: [...(cors.exposeHeaders ?? [])],
          allowCredentials: cors.allowCredentials ?? false,
          maxAgeSeconds: cors.maxAge ?? 5,
        });
        break;
      }
      case "ExtensionRef": {
        const ref = filter.extensionRef;
        if (!ref || ref.group !== RAUTA_GROUP || ref.kind !== "RautaPlugin") {
          result.unresolved.push({
            reason: "InvalidKind",
            message: `${field}: extensionRef ${ref?.group}/${ref?.kind} is not supported; RAUTA extensions are ${RAUTA_GROUP}/RautaPlugin`,
          });
          result.failClosed = true;
          break;
        }
        const lookup = ctx.plugins.resolve(ctx.namespace, ref.name, `${field}.extensionRef`);
        if (lookup.problem) {
          result.unresolved.push(lookup.problem);
          result.failClosed = true;
          break;
        }
        result.filters.push({ type: "Plugin", pluginId: lookup.id });
        break;
      }
      default:
        return fail({
          reason: "UnsupportedValue",
          message: `${field}: filter type ${filter.type} is not supported by RAUTA`,
        });
    }
  }
  if (seen.has("RequestRedirect") && seen.has("URLRewrite")) {
    return fail({
      reason: "IncompatibleFilters",
      message: `${ctx.field}.filters: RequestRedirect and URLRewrite cannot be used in the same rule`,
    });
  }
  return result;
}
