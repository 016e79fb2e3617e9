// The proxy: holds the current Generation, applies new configs (validate → prepare off the
// request path → bind new listeners → swap one reference → retire what is no longer used), and
// owns the shared state that outlives generations (pools, endpoint health, circuit breakers,
// TLS context cache, listener sockets).
import type tls from "node:tls";
import { ConfigError } from "../config/check.ts";
import type { ValidateOptions } from "../config/check.ts";
import type { CompiledConfig, Cluster } from "../config/schema.ts";
import { Generation } from "./generation.ts";
import type { PrepareDeps } from "./generation.ts";
import { PoolRegistry } from "../upstream/pools.ts";
import type { PoolOptions } from "../upstream/pools.ts";
import { ClusterState, EndpointHealth, DEFAULT_OUTLIER } from "../upstream/cluster.ts";
import type { ClusterRuntime, OutlierOptions } from "../upstream/cluster.ts";
import type { CircuitBreakerOptions } from "../upstream/circuit-breaker.ts";
import { TokenBucketLimiter } from "../upstream/rate-limit.ts";
import { RedisLimitStores } from "../upstream/global-rate-limit.ts";
import { HealthChecker, healthCheckOptions, healthCheckSettings } from "../upstream/health.ts";
import { Metrics } from "../observability/metrics.ts";
import type { RouteMetrics } from "../observability/metrics.ts";
import { createLogger } from "../observability/logger.ts";
import type { Logger } from "../observability/logger.ts";
import { ListenerServer, DEFAULT_LIMITS, socketLimits } from "../server/listeners.ts";
import type { ServerLimits } from "../server/listeners.ts";
import type { HandlerOptions, ProxyCore, Tunnel } from "../server/handler.ts";
import { StaticSecretProvider } from "../tls/secrets.ts";
import { PluginRuntime } from "../plugins/runtime.ts";
import type { PluginProblem, PreparedPlugins } from "../plugins/runtime.ts";
import type { ModuleStoreOptions } from "../plugins/modules.ts";
import { Tracers } from "../observability/tracing.ts";
import type { TracingOptions, TracingSettings } from "../observability/tracing.ts";
import type { SecretProvider } from "../tls/secrets.ts";

export interface ProxyOptions {
  /**
   * Turns the input of apply() into a CompiledConfig or throws ConfigError. validateConfig
   * (config/load.ts: zod schema, then checkConfig) wherever configs come from outside; a serving
   * worker, whose primary validated the config already, passes checkConfig and never loads zod.
   */
  validate: (input: unknown, options: ValidateOptions) => CompiledConfig;
  logger?: Logger;
  metrics?: Metrics;
  secrets?: SecretProvider;
  handler?: Partial<HandlerOptions>;
  limits?: Partial<ServerLimits>;
  pools?: Partial<PoolOptions>;
  circuitBreaker?: Partial<CircuitBreakerOptions>;
  outlier?: Partial<OutlierOptions>;
  /** Where a listener binds; default: its address ("0.0.0.0" = all local addresses). */
  bindAddress?: (listenerAddress: string) => string;
  /** Verify the config hash (default true). */
  verifyHash?: boolean;
  /** Grace period for connections of removed listeners. */
  listenerDrainMs?: number;
  /** Where plugin modules are read from and cached (plugins/modules.ts). */
  plugins?: ModuleStoreOptions;
  /** Request tracing for listeners whose config sets none (the --tracing-* flags). */
  tracing?: TracingSettings | null;
  tracingOptions?: Partial<TracingOptions>;
  /** a global rate limit's deadline for Redis's answer (default 100 ms) */
  rateLimitStoreTimeoutMs?: number;
}

export const DEFAULT_HANDLER_OPTIONS: HandlerOptions = {
  forwardedHeader: false,
  maxHeaderCount: 100,
  maxRequestBodyBytes: 0,
  tunnelIdleTimeoutMs: 300_000,
  accessLog: false,
  retryBudgetRatio: 0.2,
  retryBudgetMin: 3,
};

export interface ApplyResult {
  ok: boolean;
  generation: number;
  /** Refusal reasons (ok=false) or non-fatal problems (missing secrets, bind failures). */
  problems: string[];
  /** plugins of this config that did not load here (also in problems, as text) */
  pluginProblems?: PluginProblem[];
}

export class Proxy implements ProxyCore {
  current: Generation | null = null;
  readonly metrics: Metrics;
  readonly noRouteMetrics: RouteMetrics;
  readonly logger: Logger;
  readonly options: HandlerOptions;
  readonly tunnels = new Set<Tunnel>();
  readonly pools: PoolRegistry;
  readonly secrets: SecretProvider;
  private readonly limits: ServerLimits;
  private readonly servers = new Map<string, ListenerServer>();
  private readonly health = new Map<string, EndpointHealth>();
  private readonly clusterStates = new Map<string, { fingerprint: string; state: ClusterState }>();
  private readonly tlsCache = new Map<string, tls.SecureContext>();
  /** route id → its limiter and the settings it was built with (buckets survive reloads) */
  private readonly limiters = new Map<string, { settings: string; limiter: TokenBucketLimiter }>();
  /** active health checks by cluster id, with the settings they run (cluster healthCheck) */
  private readonly checkers = new Map<string, { settings: string; checker: HealthChecker }>();
  /** "<cluster>\n<pool key>" of the endpoints rauta_endpoint_healthy has a series for */
  private gauged = new Set<string>();
  private readonly opts: ProxyOptions;
  private applying: Promise<unknown> = Promise.resolve();
  private unsubscribeSecrets: (() => void) | null = null;
  private closed = false;
  readonly plugins: PluginRuntime;
  readonly tracers: Tracers;
  /** Redis connections of global rate limits, by URL (kept while a config names them) */
  private readonly limitStores: RedisLimitStores;
  /** generations whose tracers must keep exporting: the current one, retiring ones, and the one
   * being prepared */
  private readonly tracing = new Set<Generation>();

  constructor(opts: ProxyOptions) {
    this.opts = opts;
    this.logger = opts.logger ?? createLogger();
    this.metrics = opts.metrics ?? new Metrics();
    this.noRouteMetrics = this.metrics.route("none");
    this.options = { ...DEFAULT_HANDLER_OPTIONS, ...opts.handler };
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.pools = new PoolRegistry(opts.pools);
    this.secrets = opts.secrets ?? new StaticSecretProvider();
    this.unsubscribeSecrets = this.secrets.onChange?.(() => this.refreshTls()) ?? null;
    this.tracers = new Tracers(
      this.metrics,
      this.logger,
      opts.tracing ?? null,
      opts.tracingOptions,
    );
    this.limitStores = new RedisLimitStores(this.logger, opts.rateLimitStoreTimeoutMs);
    this.plugins = new PluginRuntime({
      ...opts.plugins,
      metrics: this.metrics,
      logger: this.logger,
    });
  }

  get ready(): boolean {
    return this.current !== null;
  }

  /** Listener servers by key "<protocol>|<address>:<port>" (tests read bound ports here). */
  get listenerServers(): ReadonlyMap<string, ListenerServer> {
    return this.servers;
  }

  /** Validates, prepares and swaps in a config; on any failure the current one keeps serving. */
  apply(input: unknown): Promise<ApplyResult> {
    const run = this.applying.then(() => this.applyNow(input));
    this.applying = run.catch(() => {});
    return run;
  }

  /**
   * `limiters`: what the config being prepared uses, by route id; it replaces this.limiters only
   * once that config is swapped in (a refused one must not cost the serving one its buckets).
   */
  private deps(
    plugins: PreparedPlugins,
    limiters: Map<string, { settings: string; limiter: TokenBucketLimiter }>,
  ): PrepareDeps {
    return {
      plugins,
      pools: this.pools,
      metrics: this.metrics,
      secrets: this.secrets,
      healthOf: key => {
        let h = this.health.get(key);
        if (!h) {
          h = new EndpointHealth();
          this.health.set(key, h);
        }
        return h;
      },
      clusterState: (c: Cluster) => {
        // breaker state survives a swap when the cluster's endpoints are unchanged
        const fingerprint = JSON.stringify([
          c.endpoints.map(e => [e.address, e.port, e.ready]),
          c.circuitBreaker ?? null,
        ]);
        const prev = this.clusterStates.get(c.id);
        if (prev && prev.fingerprint === fingerprint) return prev.state;
        const state = new ClusterState({ ...this.opts.circuitBreaker, ...c.circuitBreaker }, s =>
          this.metrics.circuitState
            .labels(c.id)
            .set(s === "closed" ? 0 : s === "half-open" ? 1 : 2),
        );
        this.clusterStates.set(c.id, { fingerprint, state });
        return state;
      },
      outlier: { ...DEFAULT_OUTLIER, ...this.opts.outlier },
      limiterFor: route => {
        if (!route.rateLimit) return null;
        const settings = JSON.stringify(route.rateLimit);
        let held = this.limiters.get(route.id);
        if (held?.settings !== settings)
          held = { settings, limiter: new TokenBucketLimiter(route.rateLimit) };
        limiters.set(route.id, held);
        return held.limiter;
      },
      limitStoreFor: url => this.limitStores.storeFor(url),
      tlsCache: this.tlsCache,
      circuitBreaker: this.opts.circuitBreaker ?? {},
      tracerFor: settings => this.tracers.tracerFor(settings),
    };
  }

  private refuse(problems: string[], generation: number): ApplyResult {
    this.metrics.configReloads.labels("refused").inc();
    this.metrics.configReloadFailures.inc();
    this.logger.error("config refused; the previous config keeps serving", {
      generation,
      servingGeneration: this.current?.number ?? null,
      problems: problems.slice(0, 20),
    });
    return { ok: false, generation, problems };
  }

  private async applyNow(input: unknown): Promise<ApplyResult> {
    if (this.closed) return { ok: false, generation: -1, problems: ["proxy is closed"] };
    const generationOf = (input as { generation?: unknown } | null)?.generation;
    const gen = typeof generationOf === "number" ? generationOf : -1;
    let config: CompiledConfig;
    let next: Generation;
    let plugins: PreparedPlugins | null = null;
    const limiters = new Map<string, { settings: string; limiter: TokenBucketLimiter }>();
    try {
      config = this.opts.validate(input, { verifyHash: this.opts.verifyHash });
      // plugin modules load (fetch, sandbox, compile, first instance) before anything is swapped
      plugins = await this.plugins.prepare(config.plugins);
      next = new Generation(config, this.deps(plugins, limiters));
      this.tracing.add(next);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.pruneTracers();
      // pools created while preparing a refused config are released with the usual grace
      if (this.current) this.pools.retainOnly(this.current.poolKeys);
      if (plugins !== null) await this.plugins.discard(plugins);
      return this.refuse(problems, gen);
    }
    const problems = [...next.problems];
    // bind listeners the new config adds (before the swap, so they answer from the first byte)
    const wanted = new Map(config.listeners.map(l => [ListenerServer.keyOf(l), l]));
    // listeners that disappear or change protocol on the same port are closed first
    const removed = [...this.servers.entries()].filter(([k]) => !wanted.has(k));
    const socketsWanted = new Set(config.listeners.map(l => `${l.address}:${l.port}`));
    const conflicting = removed.filter(([, s]) => socketsWanted.has(s.ctx.socket));
    for (const [k, s] of conflicting) {
      this.servers.delete(k);
      await s.close(0);
    }
    for (const [key, l] of wanted) {
      if (this.servers.has(key)) continue;
      const bind = this.opts.bindAddress ? this.opts.bindAddress(l.address) : l.address;
      const server = new ListenerServer(this, l, socketLimits(this.limits, l.client), bind);
      const socket = `${l.address}:${l.port}`;
      try {
        await server.listen(
          name =>
            this.current?.listeners.get(socket)?.sni?.lookup(name) ??
            next.listeners.get(socket)?.sni?.lookup(name) ??
            null,
          next.listeners.get(socket)?.sni?.defaultPair ?? null,
        );
        this.servers.set(key, server);
        this.logger.info("listener bound", {
          listener: l.name,
          address: bind,
          port: l.port,
          protocol: l.protocol,
        });
      } catch (err) {
        problems.push(`listener ${l.name} (${bind}:${l.port}): ${(err as Error).message}`);
        this.metrics.configReloads.labels("bind_error").inc();
      }
    }
    // the swap
    const prev = this.current;
    this.current = next;
    this.metrics.configGeneration.set(next.number);
    this.metrics.configReloads.labels("ok").inc();
    for (const s of this.servers.values()) {
      const pl = next.listeners.get(s.ctx.socket);
      if (pl?.sni?.defaultPair) s.setDefaultCertificate(pl.sni.defaultPair);
      if (pl) s.applyLimits(socketLimits(this.limits, pl.listener.client));
    }
    // retire: pools nobody uses, listeners the config dropped, tunnels of removed routes
    this.pools.retainOnly(next.poolKeys);
    for (const [k, s] of removed) {
      if (conflicting.some(([ck]) => ck === k)) continue;
      this.servers.delete(k);
      void s.close(this.opts.listenerDrainMs ?? 10_000);
    }
    for (const t of this.tunnels) if (!next.routes.has(t.routeId)) t.close();
    // series of routes that no longer exist go away (route churn must not grow /metrics forever),
    // once the requests still running on the previous generation have recorded theirs
    if (prev) this.forgetRemovedRoutes(prev);
    // plugin versions nothing serves any more close once the previous generation is idle
    this.plugins.commit(plugins, fn => (prev ? whenIdle(prev, fn) : fn()));
    // a tracing pipeline stops once no serving generation's listener uses it any more (its
    // queued spans are exported first)
    if (prev)
      whenIdle(prev, () => {
        if (prev !== this.current) this.tracing.delete(prev);
        this.pruneTracers();
      });
    this.syncHealthChecks(next);
    for (const key of [...this.health.keys()])
      if (!next.healthKeys.has(key)) this.health.delete(key);
    for (const id of [...this.clusterStates.keys()])
      if (!next.clusters.has(id)) this.clusterStates.delete(id);
    // buckets of routes that are gone, or whose limit changed, go with the previous generation
    this.limiters.clear();
    for (const [id, held] of limiters) this.limiters.set(id, held);
    // a Redis no route names any more is let go (a retiring request's take then fails over to
    // its failure mode)
    this.limitStores.retainOnly(
      new Set(
        config.routes.flatMap(r => (r.rateLimit?.global ? [r.rateLimit.global.redisUrl] : [])),
      ),
    );
    if (problems.length)
      this.logger.warn("config applied with problems", { generation: next.number, problems });
    this.logger.info("config applied", {
      generation: next.number,
      previous: prev?.number ?? null,
      hash: config.hash,
      listeners: config.listeners.length,
      routes: config.routes.length,
      clusters: config.clusters.length,
      memoryMiB: Object.fromEntries(
        Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1048576)]),
      ),
    });
    return { ok: true, generation: next.number, problems, pluginProblems: plugins.problems };
  }

  private pruneTracers(): void {
    this.tracers.retainOnly([...this.tracing].flatMap(g => g.tracers()));
  }

  /**
   * One checker per cluster with a healthCheck: kept (with its probing) while the settings stay,
   * restarted when they change, stopped with the cluster.
   */
  private syncHealthChecks(gen: Generation) {
    const settingsOf = (c: ClusterRuntime) =>
      c.config.healthCheck
        ? healthCheckSettings(c.config.healthCheck, c.config.protocol, c.tls)
        : null;
    for (const [id, held] of this.checkers) {
      const c = gen.clusters.get(id);
      if (c && settingsOf(c) === held.settings) continue;
      held.checker.stop();
      this.checkers.delete(id);
    }
    const gauged = new Set<string>();
    for (const c of gen.clusters.values()) {
      const hc = c.config.healthCheck;
      if (!hc) continue;
      let held = this.checkers.get(c.id);
      if (!held) {
        const checker = new HealthChecker(healthCheckOptions(hc, c.config.protocol, c.tls));
        const id = c.id;
        checker.onChange = (healthKey, healthy) => {
          // "<cluster id>|<pool key>" (UpstreamEndpoint.healthKey)
          const endpoint = healthKey.slice(id.length + 1);
          this.metrics.endpointHealth.labels(id, endpoint).set(healthy ? 1 : 0);
          this.logger.warn(healthy ? "endpoint healthy again" : "endpoint failed health checks", {
            cluster: id,
            endpoint,
          });
        };
        held = { settings: settingsOf(c)!, checker };
        this.checkers.set(c.id, held);
      }
      held.checker.sync(new Map(c.endpoints.map(e => [e.healthKey, e])));
      for (const e of c.endpoints) {
        // the verdict as it stands (it outlives a restart of the checks with new settings)
        this.metrics.endpointHealth.labels(c.id, e.key).set(e.health.activeHealthy ? 1 : 0);
        gauged.add(`${c.id}\n${e.key}`);
      }
    }
    for (const k of this.gauged) {
      if (gauged.has(k)) continue;
      const nl = k.indexOf("\n");
      this.metrics.endpointHealth.remove(k.slice(0, nl), k.slice(nl + 1));
    }
    this.gauged = gauged;
  }

  private forgetRemovedRoutes(prev: Generation) {
    whenIdle(prev, () => {
      const cur = this.current;
      for (const id of prev.routes.keys()) if (!cur?.routes.has(id)) this.metrics.forgetRoute(id);
    });
  }

  /** Re-reads certificates from the SecretProvider into the current generation. */
  refreshTls(): void {
    const gen = this.current;
    if (!gen) return;
    const problems = gen.refreshTls({ secrets: this.secrets, tlsCache: this.tlsCache });
    for (const s of this.servers.values()) {
      const pl = gen.listeners.get(s.ctx.socket);
      if (pl?.sni?.defaultPair) s.setDefaultCertificate(pl.sni.defaultPair);
    }
    if (problems.length) {
      this.metrics.tlsErrors.labels("secret").inc(problems.length);
      this.logger.warn("certificate problems after rotation", { problems });
    } else this.logger.info("certificates reloaded");
    // client certificates for TLS backends live in the pools' connect options: the same config
    // is prepared again, so new connections present the rotated certificate (pools keyed by it)
    // (only when one of those certificates changed: Secrets churn far more often)
    if (gen.clientCertificatesChanged(this.secrets))
      void this.apply(gen.config).then(r => {
        if (!r.ok)
          this.logger.warn("backend client certificate reload failed", { problems: r.problems });
      });
  }

  /** Graceful stop: stop accepting, let in-flight requests finish (up to graceMs), close pools. */
  async close(graceMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeSecrets?.();
    for (const held of this.checkers.values()) held.checker.stop();
    this.checkers.clear();
    for (const t of this.tunnels) t.close();
    await Promise.all([...this.servers.values()].map(s => s.close(graceMs)));
    this.servers.clear();
    await this.pools.destroy();
    await this.plugins.close();
    await this.limitStores.close();
    // queued spans get one last export (bounded by the export deadline)
    await this.tracers.close();
  }
}

/** Runs `fn` once no request runs on `gen` any more (at most 10 minutes later). */
function whenIdle(gen: Generation, fn: () => void): void {
  if (gen.inflight === 0) return fn();
  const deadline = Date.now() + 600_000;
  const t = setInterval(() => {
    if (gen.inflight > 0 && Date.now() < deadline) return;
    clearInterval(t);
    fn();
  }, 100);
  t.unref();
}
