// The runtime of one cluster in one generation: its endpoints with their pools, the balancer
// (round-robin or Maglev, built at load time) and the shared, generation-independent state
// (circuit breaker, endpoint health) that survives swaps for clusters that still exist.
import type { Cluster } from "../config/schema.ts";
import { Maglev } from "./maglev.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";
import type { CircuitBreakerOptions, CircuitState } from "./circuit-breaker.ts";
import { PoolRegistry, poolKey } from "./pools.ts";
import type { UpstreamPool } from "./pools.ts";
import type { UpstreamTls } from "./upstream-tls.ts";

export interface OutlierOptions {
  /** Consecutive failures (connect error, reset, 5xx) that eject an endpoint; 0 disables. */
  consecutiveFailures: number;
  baseEjectionMs: number;
}
export const DEFAULT_OUTLIER: OutlierOptions = { consecutiveFailures: 5, baseEjectionMs: 30_000 };

/**
 * Health of one endpoint, shared across generations (keyed by UpstreamEndpoint.healthKey), and
 * the tries in flight to it (least-request): a config swap must not make the requests still
 * running on the previous generation invisible to the balancer.
 */
export class EndpointHealth {
  /** Active health check verdict (true until a checker says otherwise). */
  activeHealthy = true;
  consecutiveFailures = 0;
  ejectedUntil = 0;
  ejections = 0;
  /** tries (requests, upgrades, TLS streams) to this endpoint not finished yet */
  inflight = 0;
  available(now: number): boolean {
    return this.activeHealthy && this.ejectedUntil <= now;
  }
}

export interface UpstreamEndpoint {
  key: string;
  /**
   * where its health lives: the pool key, or "<cluster id>|<pool key>" when the cluster has
   * active health checks of its own (their verdict must not leak into other clusters)
   */
  healthKey: string;
  address: string;
  port: number;
  pool: UpstreamPool;
  health: EndpointHealth;
}

export class ClusterState {
  readonly breaker: CircuitBreaker;
  constructor(breakerOptions: Partial<CircuitBreakerOptions>, onState: (s: CircuitState) => void) {
    this.breaker = new CircuitBreaker(breakerOptions);
    this.breaker.onStateChange = onState;
  }
}

const MAGLEV_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537];
// Smallest listed prime ≥ 100 × endpoints (the paper's M ≫ N), at most 65537.
export function maglevSizeFor(n: number): number {
  for (const p of MAGLEV_PRIMES) if (p >= n * 100) return p;
  return 65537;
}

export class ClusterRuntime {
  readonly id: string;
  readonly config: Cluster;
  readonly endpoints: UpstreamEndpoint[];
  readonly state: ClusterState;
  private readonly maglev: Maglev | null;
  private rr = 0;
  /** attempts in flight and retries waiting or in flight (for the retry budget) */
  active = 0;
  retriesActive = 0;
  private readonly outlier: OutlierOptions;
  /** SNI for every request to a TLS cluster (undici would otherwise take the Host header) */
  readonly servername: string | undefined;
  /** what the pools were built with: a later Secret change is compared against its key */
  readonly tls: UpstreamTls | undefined;

  constructor(
    config: Cluster,
    pools: PoolRegistry,
    healthOf: (key: string) => EndpointHealth,
    state: ClusterState,
    outlier: OutlierOptions,
    maglevTableSize?: number,
    tls?: UpstreamTls,
  ) {
    this.id = config.id;
    this.tls = tls;
    this.servername = tls?.servername;
    this.config = config;
    this.state = state;
    this.outlier = config.outlierDetection ?? outlier;
    // Ready endpoints serve; when none is ready, serving-but-terminating ones do (as kube-proxy).
    let eps = config.endpoints.filter(e => e.ready);
    if (eps.length === 0) eps = config.endpoints.filter(e => e.serving);
    const seen = new Set<string>();
    this.endpoints = [];
    for (const e of eps) {
      const key = poolKey(config.protocol, e.address, e.port, tls);
      if (seen.has(key)) continue;
      seen.add(key);
      const healthKey = config.healthCheck ? `${config.id}|${key}` : key;
      this.endpoints.push({
        key,
        healthKey,
        address: e.address,
        port: e.port,
        pool: pools.acquire(config.protocol, e.address, e.port, tls),
        health: healthOf(healthKey),
      });
    }
    this.maglev =
      config.lb === "maglev" && this.endpoints.length > 0
        ? new Maglev(
            this.endpoints.map(e => e.key),
            maglevTableSize ?? maglevSizeFor(this.endpoints.length),
          )
        : null;
  }

  /** An available endpoint, or null (none configured or all unhealthy). */
  pick(hashKey: string | null): UpstreamEndpoint | null {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 0) return null;
    const now = Date.now();
    if (this.maglev !== null && hashKey !== null) {
      const e = eps[this.maglev.lookup(hashKey)]!;
      if (e.health.available(now)) return e;
    }
    if (this.config.lb === "least-request" && n > 1) {
      // power of two choices: the less loaded of two random available endpoints
      const x = eps[Math.floor(Math.random() * n)]!;
      let y = eps[Math.floor(Math.random() * (n - 1))]!;
      if (y === x) y = eps[n - 1]!;
      const xa = x.health.available(now);
      const ya = y.health.available(now);
      if (xa && ya) return y.health.inflight < x.health.inflight ? y : x;
      if (xa) return x;
      if (ya) return y;
    }
    for (let i = 0; i < n; i++) {
      const e = eps[this.rr++ % n]!;
      if (this.rr > 0x3fffffff) this.rr = 0;
      if (e.health.available(now)) return e;
    }
    // Panic mode: when passive outlier detection has ejected every endpoint, route to those that
    // still pass active health checks rather than failing everything (as Envoy's panic threshold).
    for (let i = 0; i < n; i++) {
      const e = eps[this.rr++ % n]!;
      if (e.health.activeHealthy) return e;
    }
    return null;
  }

  /** Passive outlier detection: call with the outcome of every request to an endpoint. */
  report(e: UpstreamEndpoint, success: boolean) {
    const h = e.health;
    if (success) {
      h.consecutiveFailures = 0;
      return;
    }
    const limit = this.outlier.consecutiveFailures;
    if (limit > 0 && ++h.consecutiveFailures >= limit) {
      h.consecutiveFailures = 0;
      const now = Date.now();
      // failures of an endpoint that is already out (panic-mode traffic) do not eject it again:
      // they would stretch its ejection to the cap while it may already be back
      if (h.ejectedUntil > now) return;
      // the multiplier forgets one step per base ejection time the endpoint has been back, so an
      // old incident does not turn the next blip into the longest ejection (as Envoy's decay)
      const base = this.outlier.baseEjectionMs;
      if (h.ejections > 0 && base > 0)
        h.ejections = Math.max(0, h.ejections - Math.floor((now - h.ejectedUntil) / base));
      h.ejections++;
      h.ejectedUntil = now + base * Math.min(h.ejections, 10);
    }
  }
}
