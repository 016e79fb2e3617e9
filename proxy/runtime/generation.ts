// A Generation is everything one CompiledConfig needs at request time, fully prepared off the
// request path: routers with compiled matchers, header plans, backend pickers, cluster runtimes
// with their pools and Maglev tables, SNI contexts. Swapping configs is one reference assignment.
import type tls from "node:tls";
import type {
  CompiledConfig,
  Filter,
  Listener,
  PathModifier,
  Route,
  Cluster,
} from "../config/schema.ts";
import { HostRouter } from "../router/router.ts";
import { DEFAULT_PATH_NORMALIZATION } from "../router/normalize-path.ts";
import type { PathNormalization } from "../router/normalize-path.ts";
import { composePlan, emptyPlan, isEmptyPlan } from "../filters/headers.ts";
import type { HeaderPlan } from "../filters/headers.ts";
import { ClusterRuntime, ClusterState, EndpointHealth } from "../upstream/cluster.ts";
import type { OutlierOptions } from "../upstream/cluster.ts";
import type { PoolRegistry } from "../upstream/pools.ts";
import type { Metrics, RouteMetrics } from "../observability/metrics.ts";
import { TokenBucketLimiter } from "../upstream/rate-limit.ts";
import type { RateLimitOptions } from "../upstream/rate-limit.ts";
import type { CircuitBreakerOptions } from "../upstream/circuit-breaker.ts";
import { SniContexts } from "../tls/contexts.ts";
import type { SecretProvider } from "../tls/secrets.ts";

export interface RedirectPlan {
  scheme: "http" | "https" | undefined;
  hostname: string | undefined;
  port: number | undefined;
  path: PathModifier | undefined;
  statusCode: number;
}

export interface CorsPlan {
  allowAllOrigins: boolean;
  origins: Set<string>;
  wildcardOrigins: RegExp[];
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  allowCredentials: boolean;
  maxAge: string;
}

export interface PreparedBackend {
  cluster: ClusterRuntime | null;
  clusterId: string | null;
  weight: number;
  request: HeaderPlan | null;
  response: HeaderPlan | null;
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
  redirect: RedirectPlan | null;
  rewriteHost: string | undefined;
  rewritePath: PathModifier | undefined;
  cors: CorsPlan | null;
  mirrors: Array<{ cluster: ClusterRuntime; numerator: number; denominator: number }>;
  /** A FailClosed plugin filter whose runtime is not available: answer 500 with this text. */
  pluginFailure: string | null;
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
  limiter: TokenBucketLimiter | null;
}

export interface PreparedListener {
  listener: Listener;
  /** "<address>:<port>" */
  socket: string;
  router: HostRouter<PreparedRoute>;
  sni: SniContexts | null;
  paths: PathNormalization;
}

export interface PrepareDeps {
  pools: PoolRegistry;
  metrics: Metrics;
  secrets: SecretProvider;
  healthOf: (key: string) => EndpointHealth;
  clusterState: (cluster: Cluster) => ClusterState;
  outlier: OutlierOptions;
  rateLimits: Record<string, RateLimitOptions>;
  tlsCache: Map<string, tls.SecureContext>;
  circuitBreaker: Partial<CircuitBreakerOptions>;
}

export class Generation {
  readonly config: CompiledConfig;
  readonly number: number;
  readonly listeners = new Map<string, PreparedListener>();
  readonly routes = new Map<string, PreparedRoute>();
  readonly clusters = new Map<string, ClusterRuntime>();
  readonly poolKeys = new Set<string>();
  readonly problems: string[] = [];
  /** requests (and tunnels) still running on this generation */
  inflight = 0;

  constructor(config: CompiledConfig, deps: PrepareDeps) {
    this.config = config;
    this.number = config.generation;
    for (const c of config.clusters) {
      const rt = new ClusterRuntime(
        c,
        deps.pools,
        deps.healthOf,
        deps.clusterState(c),
        deps.outlier,
      );
      this.clusters.set(c.id, rt);
      for (const e of rt.endpoints) this.poolKeys.add(e.key);
    }
    for (const r of config.routes) this.routes.set(r.id, this.prepareRoute(r, deps));
    for (const l of config.listeners) {
      const socket = `${l.address}:${l.port}`;
      const router = new HostRouter<PreparedRoute>(l.virtualHosts, id => this.routes.get(id)!);
      let sni: SniContexts | null = null;
      if (l.protocol === "HTTPS") {
        sni = new SniContexts(l, deps.secrets, deps.tlsCache);
        this.problems.push(...sni.problems);
      }
      const paths = l.pathNormalization ?? DEFAULT_PATH_NORMALIZATION;
      this.listeners.set(socket, { listener: l, socket, router, sni, paths });
    }
  }

  /** Rebuilds the SNI contexts (certificate rotation) in place. */
  refreshTls(deps: Pick<PrepareDeps, "secrets" | "tlsCache">): string[] {
    const problems: string[] = [];
    for (const pl of this.listeners.values()) {
      if (pl.listener.protocol !== "HTTPS") continue;
      pl.sni = new SniContexts(pl.listener, deps.secrets, deps.tlsCache);
      problems.push(...pl.sni.problems);
    }
    return problems;
  }

  private prepareRoute(r: Route, deps: PrepareDeps): PreparedRoute {
    let request = emptyPlan();
    let response = emptyPlan();
    let redirect: RedirectPlan | null = null;
    let rewriteHost: string | undefined;
    let rewritePath: PathModifier | undefined;
    let cors: CorsPlan | null = null;
    let pluginFailure: string | null = null;
    const mirrors: PreparedRoute["mirrors"] = [];
    const pluginsById = new Map(this.config.plugins.map(p => [p.id, p]));
    for (const f of r.filters) {
      switch (f.type) {
        case "RequestHeaderModifier":
          request = composePlan(request, f);
          break;
        case "ResponseHeaderModifier":
          response = composePlan(response, f);
          break;
        case "RequestRedirect":
          redirect = {
            scheme: f.scheme,
            hostname: f.hostname,
            port: f.port,
            path: f.path,
            statusCode: f.statusCode,
          };
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
        case "CORS":
          cors = corsPlan(f);
          break;
        case "Plugin": {
          // The plugin runtime is not part of this build: FailOpen plugins are skipped,
          // FailClosed ones answer 500 rather than letting traffic through unchecked.
          const p = pluginsById.get(f.pluginId);
          if (p?.failurePolicy === "FailClosed" && pluginFailure === null) {
            pluginFailure = `plugin ${f.pluginId} (FailClosed) is not available in this proxy`;
          }
          break;
        }
      }
    }
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
      total += b.weight;
      cumulative.push(total);
      backends.push({
        cluster: b.clusterId === null ? null : (this.clusters.get(b.clusterId) ?? null),
        clusterId: b.clusterId,
        weight: b.weight,
        request: isEmptyPlan(req) ? null : req,
        response: isEmptyPlan(resp) ? null : resp,
      });
    }
    const rl = deps.rateLimits[r.id];
    return {
      id: r.id,
      route: r,
      metrics: deps.metrics.route(r.id),
      redirect,
      rewriteHost,
      rewritePath,
      cors,
      mirrors,
      pluginFailure,
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
      limiter: rl ? new TokenBucketLimiter(rl) : null,
    };
  }
}

function corsPlan(f: Extract<Filter, { type: "CORS" }>): CorsPlan {
  const origins = new Set<string>();
  const wildcardOrigins: RegExp[] = [];
  let all = false;
  for (const o of f.allowOrigins) {
    if (o === "*") all = true;
    else if (o.includes("*")) {
      const src = o
        .split("*")
        .map(s => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"))
        .join("[^/]*");
      wildcardOrigins.push(new RegExp(`^${src}$`));
    } else origins.add(o);
  }
  return {
    allowAllOrigins: all,
    origins,
    wildcardOrigins,
    allowMethods: f.allowMethods.join(", "),
    allowHeaders: f.allowHeaders.join(", "),
    exposeHeaders: f.exposeHeaders.join(", "),
    allowCredentials: f.allowCredentials,
    maxAge: String(f.maxAgeSeconds),
  };
}

export function upstreamTimeout(
  t: Route["timeouts"],
  pool: { headersTimeoutMs: number; bodyTimeoutMs: number },
): number | null {
  if (t.requestMs === 0 || t.backendRequestMs === 0) return 0;
  const longest = Math.max(t.requestMs ?? 0, t.backendRequestMs ?? 0);
  return longest > Math.min(pool.headersTimeoutMs, pool.bodyTimeoutMs) ? longest : null;
}
