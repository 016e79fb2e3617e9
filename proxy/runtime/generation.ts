// A Generation is everything one CompiledConfig needs at request time, fully prepared off the
// request path: routers with compiled matchers, header plans, backend pickers, cluster runtimes
// with their pools and Maglev tables, SNI contexts. Swapping configs is one reference assignment.
import type tls from "node:tls";
import type {
  CompiledConfig,
  Listener,
  PathModifier,
  Route,
  Cluster,
  StreamEntry,
} from "../config/schema.ts";
import { HostIndex } from "../router/host-index.ts";
import { HostRouter } from "../router/router.ts";
import { DEFAULT_PATH_NORMALIZATION } from "../router/normalize-path.ts";
import type { PathNormalization } from "../router/normalize-path.ts";
import { composePlan, emptyPlan, isEmptyPlan } from "../filters/headers.ts";
import type { HeaderPlan } from "../filters/headers.ts";
import { ClusterRuntime, ClusterState, EndpointHealth } from "../upstream/cluster.ts";
import type { OutlierOptions } from "../upstream/cluster.ts";
import type { PoolRegistry } from "../upstream/pools.ts";
import type { Metrics, RouteMetrics } from "../observability/metrics.ts";
import type { TokenBucketLimiter } from "../upstream/rate-limit.ts";
import { RateLimitStep } from "../pipeline/steps/rate-limit.ts";
import { GlobalRateLimitStep } from "../pipeline/steps/global-rate-limit.ts";
import type { RedisLimitStore } from "../upstream/global-rate-limit.ts";
import type { CircuitBreakerOptions } from "../upstream/circuit-breaker.ts";
import { SniContexts } from "../tls/contexts.ts";
import type { SecretProvider } from "../tls/secrets.ts";
import { referencedCredentials } from "../config/certificates.ts";
import {
  EMPTY_CHAIN,
  buildBackendChain,
  buildListenerChain,
  buildRouteChain,
} from "../pipeline/chain.ts";
import type { Chain, ChainDeps } from "../pipeline/chain.ts";
import type { PreparedPlugins } from "../plugins/runtime.ts";
import { upstreamTls } from "../upstream/upstream-tls.ts";
import { cookiePathProblem } from "../upstream/hash-key.ts";
import type { UpstreamTls } from "../upstream/upstream-tls.ts";
import type { RequestTracer } from "../observability/tracing.ts";

export interface PreparedBackend {
  cluster: ClusterRuntime | null;
  clusterId: string | null;
  weight: number;
  request: HeaderPlan | null;
  response: HeaderPlan | null;
  /** plugins of this backendRef (chain step 6) */
  chain: Chain;
}

export interface RetryPlan {
  attempts: number;
  codes: Set<number>;
  backoffMs: number;
}

export interface PreparedRoute {
  id: string;
  route: Route;
  metrics: RouteMetrics;
  rewriteHost: string | undefined;
  rewritePath: PathModifier | undefined;
  mirrors: Array<{ cluster: ClusterRuntime; numerator: number; denominator: number }>;
  /** chain steps before the Gateway's plugins (CORS) and after them (pipeline/chain.ts) */
  early: Chain;
  late: Chain;
  /** any request step in early or late (the rate limit aside), or in a backend's chain */
  hasChain: boolean;
  /** the route's rate limit; also a step of `late` for requests that run the chain */
  limit: RateLimitStep | null;
  backends: PreparedBackend[];
  /** cumulative weights, for weighted picking */
  cumulative: number[];
  totalWeight: number;
  requestTimeoutMs: number;
  backendTimeoutMs: number;
  /**
   * undici's headers/body timeouts for this route's upstream requests when the pool's defaults
   * would not do: they are a safety net under the route's own deadlines, so never shorter than
   * those, and off (0) when the route turns a timeout off ("0s"). null: the pool's defaults.
   */
  upstreamTimeoutMs: number | null;
  retry: RetryPlan | null;
}

export interface PreparedListener {
  listener: Listener;
  /** "<address>:<port>" */
  socket: string;
  router: HostRouter<PreparedRoute>;
  sni: SniContexts | null;
  /** the SNI table of a socket with TLS listeners (config Listener.streams) */
  streams: HostIndex<StreamEntry> | null;
  paths: PathNormalization;
  /** the Gateway's plugins (chain step 2) */
  chain: Chain;
  /** this socket's request tracing (config Listener.tracing, else the proxy's flags); null: off */
  tracer: RequestTracer | null;
}

export interface PrepareDeps {
  pools: PoolRegistry;
  metrics: Metrics;
  secrets: SecretProvider;
  healthOf: (key: string) => EndpointHealth;
  clusterState: (cluster: Cluster) => ClusterState;
  outlier: OutlierOptions;
  /** the limiter of a route's rateLimit, kept across generations while its settings stay */
  limiterFor: (route: Route) => TokenBucketLimiter | null;
  /** the Redis connection of a global rate limit's store */
  limitStoreFor: (redisUrl: string) => RedisLimitStore;
  tlsCache: Map<string, tls.SecureContext>;
  circuitBreaker: Partial<CircuitBreakerOptions>;
  /** the plugins the runtime loaded for this config (plugins/runtime.ts) */
  plugins: PreparedPlugins;
  /** the tracer of a listener's tracing settings (observability/tracing.ts) */
  tracerFor: (settings: Listener["tracing"]) => RequestTracer | null;
}

export class Generation {
  readonly config: CompiledConfig;
  readonly number: number;
  readonly listeners = new Map<string, PreparedListener>();
  readonly routes = new Map<string, PreparedRoute>();
  readonly clusters = new Map<string, ClusterRuntime>();
  readonly poolKeys = new Set<string>();
  /** keys of the endpoint health this generation uses (UpstreamEndpoint.healthKey) */
  readonly healthKeys = new Set<string>();
  readonly problems: string[] = [];
  /** requests (and tunnels) still running on this generation */
  inflight = 0;

  constructor(config: CompiledConfig, deps: PrepareDeps) {
    this.config = config;
    this.number = config.generation;
    for (const c of config.clusters) {
      let tls: UpstreamTls | undefined;
      if (c.tls) {
        const built = upstreamTls(c.tls, deps.secrets);
        tls = built.tls;
        if (built.problem) this.problems.push(`cluster ${c.id}: ${built.problem}`);
      }
      if (c.hashOn?.type === "Cookie") {
        const bad = cookiePathProblem(c.hashOn.path);
        if (bad !== null) this.problems.push(`cluster ${c.id}: ${bad}`);
      }
      const rt = new ClusterRuntime(
        c,
        deps.pools,
        deps.healthOf,
        deps.clusterState(c),
        deps.outlier,
        undefined,
        tls,
      );
      this.clusters.set(c.id, rt);
      for (const e of rt.endpoints) {
        this.poolKeys.add(e.key);
        this.healthKeys.add(e.healthKey);
      }
    }
    const chainDeps: ChainDeps = {
      metrics: deps.metrics,
      plugins: deps.plugins.plugins,
      pluginProblems: new Map(
        deps.plugins.problems.map(p => [p.plugin, `${p.reason}: ${p.message}`]),
      ),
      pluginSpecs: new Map(config.plugins.map(p => [p.id, p])),
      clusters: this.clusters,
      secrets: deps.secrets,
    };
    for (const p of deps.plugins.problems)
      this.problems.push(
        `plugin ${p.plugin}: ${p.reason}: ${p.message}${p.serving ? ` (the previous version ${p.serving} keeps serving)` : ""}`,
      );
    for (const r of config.routes) this.routes.set(r.id, this.prepareRoute(r, deps, chainDeps));
    // served anyway (the route answers 500 until the Secret arrives), but said
    for (const ref of referencedCredentials(config))
      if (deps.secrets.data(ref) === undefined)
        this.problems.push(
          `Secret ${ref.namespace}/${ref.name} (basic-auth users or API keys) is not loaded: its routes answer 500`,
        );
    for (const l of config.listeners) {
      const socket = `${l.address}:${l.port}`;
      const router = new HostRouter<PreparedRoute>(l.virtualHosts, id => this.routes.get(id)!);
      let sni: SniContexts | null = null;
      if (l.tls !== undefined) {
        sni = new SniContexts(l, deps.secrets, deps.tlsCache);
        this.problems.push(...sni.problems);
      }
      const paths = l.pathNormalization ?? DEFAULT_PATH_NORMALIZATION;
      const chain = l.plugins.length ? buildListenerChain(l.plugins, chainDeps) : EMPTY_CHAIN;
      const streams = l.streams
        ? new HostIndex(l.streams.map(e => [e.hostname, e] as const))
        : null;
      const tracer = deps.tracerFor(l.tracing);
      this.listeners.set(socket, {
        listener: l,
        socket,
        router,
        sni,
        streams,
        paths,
        chain,
        tracer,
      });
    }
  }

  /** The tracers this generation's listeners use. */
  tracers(): RequestTracer[] {
    const out: RequestTracer[] = [];
    for (const pl of this.listeners.values()) if (pl.tracer !== null) out.push(pl.tracer);
    return out;
  }

  /** Whether a client certificate of a TLS cluster changed since this generation was built. */
  clientCertificatesChanged(secrets: SecretProvider): boolean {
    for (const c of this.config.clusters) {
      if (!c.tls?.clientCertificate) continue;
      if (upstreamTls(c.tls, secrets).tls.key !== this.clusters.get(c.id)?.tls?.key) return true;
    }
    return false;
  }

  /** Rebuilds the SNI contexts (certificate rotation) in place. */
  refreshTls(deps: Pick<PrepareDeps, "secrets" | "tlsCache">): string[] {
    const problems: string[] = [];
    for (const pl of this.listeners.values()) {
      if (pl.listener.tls === undefined) continue;
      pl.sni = new SniContexts(pl.listener, deps.secrets, deps.tlsCache);
      problems.push(...pl.sni.problems);
    }
    return problems;
  }

  private prepareRoute(r: Route, deps: PrepareDeps, chainDeps: ChainDeps): PreparedRoute {
    let request = emptyPlan();
    let response = emptyPlan();
    let rewriteHost: string | undefined;
    let rewritePath: PathModifier | undefined;
    const mirrors: PreparedRoute["mirrors"] = [];
    for (const f of r.filters) {
      switch (f.type) {
        case "RequestHeaderModifier":
          request = composePlan(request, f);
          break;
        case "ResponseHeaderModifier":
          response = composePlan(response, f);
          break;
        case "URLRewrite":
          rewriteHost = f.hostname ?? rewriteHost;
          rewritePath = f.path ?? rewritePath;
          break;
        case "RequestMirror": {
          const c = this.clusters.get(f.clusterId);
          if (c) mirrors.push({ cluster: c, numerator: f.numerator, denominator: f.denominator });
          break;
        }
        // CORS, RequestRedirect and Plugin are chain steps (pipeline/chain.ts)
        case "CORS":
        case "RequestRedirect":
        case "Plugin":
        case "ExternalAuth":
          break;
      }
    }
    const global = r.rateLimit?.global;
    const limiter = global ? null : deps.limiterFor(r);
    const limit = limiter === null ? null : new RateLimitStep(limiter, deps.metrics);
    const { early, late } = buildRouteChain(
      r,
      chainDeps,
      global
        ? new GlobalRateLimitStep(
            deps.limitStoreFor(global.redisUrl),
            r.rateLimit!,
            r.id,
            deps.metrics,
          )
        : limit,
    );
    // a local rate limit alone needs no chain: the handler asks it directly
    // (RateLimitStep.admit); a global one waits for Redis, so it runs in the chain
    let hasChain =
      early.request.length + late.request.length + late.response.length > (limit ? 1 : 0);
    const backends: PreparedBackend[] = [];
    const cumulative: number[] = [];
    let total = 0;
    for (const b of r.backends) {
      let req = request;
      let resp = response;
      for (const f of b.filters) {
        if (f.type === "RequestHeaderModifier") req = composePlan(req, f);
        else if (f.type === "ResponseHeaderModifier") resp = composePlan(resp, f);
      }
      const chain = b.filters.some(f => f.type === "Plugin")
        ? buildBackendChain(b.filters, chainDeps)
        : EMPTY_CHAIN;
      if (chain.request.length + chain.response.length > 0) hasChain = true;
      total += b.weight;
      cumulative.push(total);
      backends.push({
        cluster: b.clusterId === null ? null : (this.clusters.get(b.clusterId) ?? null),
        clusterId: b.clusterId,
        weight: b.weight,
        request: isEmptyPlan(req) ? null : req,
        response: isEmptyPlan(resp) ? null : resp,
        chain,
      });
    }
    return {
      id: r.id,
      route: r,
      metrics: deps.metrics.route(r.id),
      rewriteHost,
      rewritePath,
      mirrors,
      early,
      late,
      hasChain,
      limit,
      backends,
      cumulative,
      totalWeight: total,
      requestTimeoutMs: r.timeouts.requestMs ?? 0,
      backendTimeoutMs: r.timeouts.backendRequestMs ?? 0,
      upstreamTimeoutMs: upstreamTimeout(r.timeouts, deps.pools.options),
      retry:
        r.retry && r.retry.attempts > 0
          ? {
              attempts: r.retry.attempts,
              codes: new Set(r.retry.codes.length ? r.retry.codes : [502, 503, 504]),
              backoffMs: r.retry.backoffMs ?? 25,
            }
          : null,
    };
  }
}

export function upstreamTimeout(
  t: Route["timeouts"],
  pool: { headersTimeoutMs: number; bodyTimeoutMs: number },
): number | null {
  if (t.requestMs === 0 || t.backendRequestMs === 0) return 0;
  const longest = Math.max(t.requestMs ?? 0, t.backendRequestMs ?? 0);
  return longest > Math.min(pool.headersTimeoutMs, pool.bodyTimeoutMs) ? longest : null;
}
