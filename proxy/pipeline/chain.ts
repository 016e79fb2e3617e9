// The request chain: what runs between routing and the upstream, built once per route (and per
// listener, for Gateway-wide plugins) when a config is prepared. One documented order, for plain
// requests and upgrades alike:
//
//   0. ip-authorization   the route's IP allow/deny lists (SecurityPolicy): 403 before anything
//   1. cors               the route's CORS filter (a preflight is answered before any auth)
//   2. api-key-auth       the route's API keys (SecurityPolicy apiKeyAuth): 401 without a known one
//   3. basic-auth         the route's htpasswd users (SecurityPolicy basicAuth): 401 + challenge
//   4. external auth      the route's ExternalAuth filter: its auth service (HTTP or gRPC) allows or answers
//   5. gateway plugins    RautaPlugins targeting the Gateway (Listener.plugins), in config order
//   6. route plugins      the rauta.io/plugins annotation, then the rule's ExtensionRef filters as listed
//   7. rate-limit         the route's rateLimit (BackendTrafficPolicy), local or global (Redis)
//   8. redirect           RequestRedirect ends the request here
//   -- backend picked --
//   9. backend plugins    ExtensionRef filters of the chosen backendRef
//   -- upstream response head --
//  10. response plugins   on_response of every plugin above that exports it, in reverse order
//
// The checks a gateway answers alone (2, 3) come before the one that costs a call (4), so a
// request without credentials never reaches the auth service.
//
// Adding a step means one file in steps/ and one line in buildRouteChain/buildListenerChain.
// A route with no step keeps the plain path: no context, no promise, no allocation.
import type { Filter, Route } from "../config/schema.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { LoadedPlugin } from "../plugins/loaded-plugin.ts";
import type { RequestContext } from "./context.ts";
import type { RequestStep, ResponseStep, StepResult } from "./step.ts";
import type { ClusterRuntime } from "../upstream/cluster.ts";
import type { SecretProvider } from "../tls/secrets.ts";
import { CorsStep } from "./steps/cors.ts";
import { ApiKeyAuthStep } from "./steps/api-key-auth.ts";
import { BasicAuthStep } from "./steps/basic-auth.ts";
import { ExternalAuthStep } from "./steps/external-auth.ts";
import { IpAuthorizationStep } from "./steps/ip-authorization.ts";
import { PluginRequestStep, PluginResponseStep, UnavailablePluginStep } from "./steps/plugin.ts";
import { RedirectStep } from "./steps/redirect.ts";

export interface ChainDeps {
  metrics: Metrics;
  /** loaded plugins of this generation by id */
  plugins: ReadonlyMap<string, LoadedPlugin>;
  /** why a plugin the config names is not loaded */
  pluginProblems: ReadonlyMap<string, string>;
  pluginSpecs: ReadonlyMap<string, { id: string; failurePolicy: "FailOpen" | "FailClosed" }>;
  /** this generation's clusters (an ExternalAuth filter's auth service) */
  clusters: ReadonlyMap<string, ClusterRuntime>;
  /** basic-auth users and API keys, read per request (a rotated Secret applies at once) */
  secrets: SecretProvider;
}

export interface Chain {
  request: RequestStep[];
  response: ResponseStep[];
}

export const EMPTY_CHAIN: Chain = { request: [], response: [] };

function pluginSteps(ids: string[], deps: ChainDeps, chain: Chain) {
  for (const id of ids) {
    const p = deps.plugins.get(id);
    if (p === undefined) {
      const spec = deps.pluginSpecs.get(id) ?? { id, failurePolicy: "FailClosed" as const };
      chain.request.push(
        new UnavailablePluginStep(spec, deps.pluginProblems.get(id) ?? "not in the config"),
      );
      continue;
    }
    if (p.hasRequest) chain.request.push(new PluginRequestStep(p));
    if (p.hasResponse) chain.response.unshift(new PluginResponseStep(p));
  }
}

const pluginIds = (filters: Filter[]) =>
  filters.flatMap(f => (f.type === "Plugin" ? [f.pluginId] : []));

/** Steps 0–4, 6, 7, 8 (and 10 for the route's plugins). */
export function buildRouteChain(
  r: Route,
  deps: ChainDeps,
  limit: RequestStep | null,
): { early: Chain; late: Chain } {
  const early: Chain = { request: [], response: [] };
  const late: Chain = { request: [], response: [] };
  if (r.authorization) early.request.push(new IpAuthorizationStep(r.authorization));
  for (const f of r.filters) if (f.type === "CORS") early.request.push(new CorsStep(f));
  if (r.apiKeyAuth)
    early.request.push(new ApiKeyAuthStep(r.apiKeyAuth, deps.secrets, deps.metrics));
  if (r.basicAuth) early.request.push(new BasicAuthStep(r.basicAuth, deps.secrets, deps.metrics));
  for (const f of r.filters)
    if (f.type === "ExternalAuth")
      early.request.push(
        new ExternalAuthStep(f, deps.clusters.get(f.clusterId), deps.metrics, r.signIn?.url),
      );
  pluginSteps(pluginIds(r.filters), deps, late);
  if (limit !== null) late.request.push(limit);
  for (const f of r.filters)
    if (f.type === "RequestRedirect")
      late.request.push(
        new RedirectStep({
          scheme: f.scheme,
          hostname: f.hostname,
          port: f.port,
          path: f.path,
          statusCode: f.statusCode,
        }),
      );
  return { early, late };
}

/** Step 5. */
export function buildListenerChain(pluginIdsOfListener: string[], deps: ChainDeps): Chain {
  const chain: Chain = { request: [], response: [] };
  pluginSteps(pluginIdsOfListener, deps, chain);
  return chain;
}

/** Step 9. */
export function buildBackendChain(filters: Filter[], deps: ChainDeps): Chain {
  const chain: Chain = { request: [], response: [] };
  pluginSteps(pluginIds(filters), deps, chain);
  return chain;
}

function isPromise(v: StepResult | Promise<StepResult>): v is Promise<StepResult> {
  return v !== null && typeof (v as Promise<StepResult>).then === "function";
}

/**
 * Runs `lists` in order; synchronous steps stay on the current tick. `done` gets the first local
 * reply or null; a step that throws is passed to `done` as an error (the caller contains it).
 */
export function runSteps(
  ctx: RequestContext,
  lists: ReadonlyArray<readonly RequestStep[]>,
  done: (reply: StepResult, err?: unknown) => void,
  li = 0,
  si = 0,
): void {
  for (; li < lists.length; li++, si = 0) {
    const steps = lists[li]!;
    for (; si < steps.length; si++) {
      let r: StepResult | Promise<StepResult>;
      try {
        r = steps[si]!.run(ctx);
      } catch (err) {
        done(null, err);
        return;
      }
      if (isPromise(r)) {
        const nl = li;
        const ns = si + 1;
        r.then(
          v => (v !== null ? done(v) : runSteps(ctx, lists, done, nl, ns)),
          err => done(null, err),
        );
        return;
      }
      if (r !== null) {
        done(r);
        return;
      }
    }
  }
  done(null);
}
