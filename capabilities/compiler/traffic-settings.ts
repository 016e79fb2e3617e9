// A BackendTrafficPolicy's spec on its own: what each section compiles to in the config, and
// every problem that makes the policy unusable. Admission and the compiler share these checks,
// so `kubectl apply` refuses exactly what status would report.
import type {
  Retry,
  Route,
  Cluster,
  ClusterCircuitBreaker,
  ClusterHealthCheck,
  ClusterOutlierDetection,
  HashOn,
  RateLimit,
} from "../../proxy/config/index.ts";
import type { Problem } from "./conditions.ts";
import { parseDuration } from "./durations.ts";
import { repeatedTargets } from "./policy-attachment.ts";
import type { BackendTrafficPolicy } from "./snapshot.ts";

export type TrafficSpec = BackendTrafficPolicy["spec"];

/** What one policy sets, section by section; each section is taken whole from one policy. */
export interface TrafficSettings {
  rateLimit?: RateLimit;
  /** defaults for rules whose HTTPRoute sets no timeouts / no retry of its own */
  timeout?: Route["timeouts"];
  retry?: Retry;
  loadBalancer?: { lb: Cluster["lb"]; hashOn?: HashOn };
  circuitBreaker?: ClusterCircuitBreaker;
  healthCheck?: ClusterHealthCheck;
  outlierDetection?: ClusterOutlierDetection;
}
export type TrafficSection = keyof TrafficSettings;
/** most specific attachment wins per section, in this order of the config */
export const SECTIONS: readonly TrafficSection[] = [
  "rateLimit",
  "timeout",
  "retry",
  "loadBalancer",
  "circuitBreaker",
  "healthCheck",
  "outlierDetection",
];
/** where each section is in the BackendTrafficPolicy spec */
export const SECTION_FIELDS: Readonly<Record<TrafficSection, string>> = {
  rateLimit: "rateLimit",
  timeout: "timeout",
  retry: "retry",
  loadBalancer: "loadBalancer",
  circuitBreaker: "circuitBreaker",
  healthCheck: "healthCheck.active",
  outlierDetection: "healthCheck.passive",
};
/** the sections that shape a cluster (the rest shape a route) */
export const ROUTE_SECTIONS: readonly TrafficSection[] = ["rateLimit", "timeout", "retry"];
export const CLUSTER_SECTIONS: readonly TrafficSection[] = SECTIONS.filter(
  s => !ROUTE_SECTIONS.includes(s),
);

// Documented defaults (docs/policies/backend-traffic.md); the proxy's own defaults match.
export const DEFAULTS = {
  circuitBreaker: {
    windowMs: 10_000,
    minRequests: 20,
    errorRatio: 0.5,
    openMs: 30_000,
    halfOpenProbes: 1,
    errorStatuses: false,
  },
  healthCheck: { intervalMs: 5_000, timeoutMs: 1_000, healthyThreshold: 1, unhealthyThreshold: 3 },
  outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30_000 },
} as const;

const UNIT_MS = { Second: 1_000, Minute: 60_000, Hour: 3_600_000 } as const;
const GATEWAY_GROUP = "gateway.networking.k8s.io";

/** The compiled sections, or every problem of the spec (field paths a person can find). */
export function compileTrafficSpec(spec: TrafficSpec): TrafficSettings | Problem[] {
  const problems: string[] = [];
  const duration = (field: string, value: string | undefined, fallback: number, min = 1) => {
    if (value === undefined) return fallback;
    const ms = parseDuration(value);
    if (ms === undefined) problems.push(`${field}: ${JSON.stringify(value)} is not a duration`);
    else if (ms < min) problems.push(`${field}: ${value} is shorter than ${min}ms`);
    return ms ?? fallback;
  };
  checkTargets(spec, problems);
  const out: TrafficSettings = {};

  const rl = spec.rateLimit;
  if (rl) {
    // local and global take the same bucket fields; global adds where the budget lives
    const field = rl.global ? "spec.rateLimit.global" : "spec.rateLimit.local";
    const bucket = rl.global ?? rl.local;
    if (rl.global && rl.local)
      problems.push(
        "spec.rateLimit: give local (each replica counts on its own) or global (one budget in Redis), not both",
      );
    if (!bucket) problems.push("spec.rateLimit: give local or global");
    else {
      const key = bucket.key ?? { type: "ClientIP" };
      if (key.type === "Header" && !key.header)
        problems.push(`${field}.key.header: required for type Header (the header name)`);
      if (key.type !== "Header" && key.header !== undefined)
        problems.push(`${field}.key.header: only for type Header (type is ${key.type}); remove it`);
      out.rateLimit = {
        requests: bucket.requests,
        intervalMs: UNIT_MS[bucket.unit],
        burst: bucket.burst ?? bucket.requests,
        key:
          key.type === "Header"
            ? { type: "Header", name: (key.header ?? "x").toLowerCase() }
            : { type: key.type },
      };
      if (rl.global) {
        const url = rl.global.redis.url;
        if (!/^rediss?:\/\/[^\s@/]+(\/[0-9]{1,2})?$/.test(url) || !URL.canParse(url))
          problems.push(
            `spec.rateLimit.global.redis.url: ${JSON.stringify(url)} is not a redis://host:port or rediss://host:port URL (optionally /db; no credentials)`,
          );
        out.rateLimit.global = {
          redisUrl: url,
          failureMode: rl.global.failureMode ?? "FailOpen",
        };
      }
    }
  }

  const timeout = spec.timeout;
  if (timeout) {
    const request = duration("spec.timeout.request", timeout.request, -1, 0);
    const backend = duration("spec.timeout.backendRequest", timeout.backendRequest, -1, 0);
    if (request > 0 && backend > request)
      problems.push(
        `spec.timeout.backendRequest (${timeout.backendRequest}) is longer than spec.timeout.request (${timeout.request}), which includes every try`,
      );
    out.timeout = {
      ...(request >= 0 ? { requestMs: request } : {}),
      ...(backend >= 0 ? { backendRequestMs: backend } : {}),
    };
  }
  const retry = spec.retry;
  if (retry)
    out.retry = {
      attempts: retry.attempts,
      codes: [...new Set(retry.statusCodes ?? [])].sort((a, b) => a - b),
      ...(retry.backoff !== undefined
        ? { backoffMs: duration("spec.retry.backoff", retry.backoff, 25, 1) }
        : {}),
    };

  const lb = spec.loadBalancer;
  if (lb) {
    const hash = lb.consistentHash;
    if (lb.type !== "ConsistentHash") {
      if (hash)
        problems.push(
          `spec.loadBalancer.consistentHash: only for type ConsistentHash (type is ${lb.type}); remove it or set type ConsistentHash`,
        );
      out.loadBalancer = { lb: lb.type === "LeastRequest" ? "least-request" : "round-robin" };
    } else {
      const on = hashOn(hash, problems, duration);
      out.loadBalancer = on ? { lb: "maglev", hashOn: on } : { lb: "maglev" };
    }
  }

  const cb = spec.circuitBreaker;
  if (cb) {
    const d = DEFAULTS.circuitBreaker;
    out.circuitBreaker = {
      windowMs: duration("spec.circuitBreaker.window", cb.window, d.windowMs, 100),
      minRequests: cb.minRequests ?? d.minRequests,
      errorRatio: cb.errorPercent === undefined ? d.errorRatio : cb.errorPercent / 100,
      openMs: duration("spec.circuitBreaker.openDuration", cb.openDuration, d.openMs),
      halfOpenProbes: cb.halfOpenRequests ?? d.halfOpenProbes,
      errorStatuses: cb.countErrorStatuses ?? d.errorStatuses,
    };
  }

  const active = spec.healthCheck?.active;
  if (active) {
    const d = DEFAULTS.healthCheck;
    const intervalMs = duration(
      "spec.healthCheck.active.interval",
      active.interval,
      d.intervalMs,
      100,
    );
    const timeoutMs = duration("spec.healthCheck.active.timeout", active.timeout, d.timeoutMs);
    if (timeoutMs > intervalMs)
      problems.push(
        `spec.healthCheck.active.timeout (${timeoutMs}ms) is longer than its interval (${intervalMs}ms): probes would pile up; shorten the timeout or lengthen the interval`,
      );
    if (active.type === "TCP" && active.http)
      problems.push("spec.healthCheck.active.http: only for type HTTP (type is TCP); remove it");
    const http = active.type === "HTTP" ? (active.http ?? {}) : undefined;
    out.healthCheck = {
      type: active.type,
      ...(http ? { path: http.path ?? "/" } : {}),
      ...(http?.hostname ? { hostname: http.hostname } : {}),
      ...(http?.expectedStatuses?.length
        ? { expectedStatuses: [...new Set(http.expectedStatuses)].sort((a, b) => a - b) }
        : {}),
      intervalMs,
      timeoutMs,
      healthyThreshold: active.healthyThreshold ?? d.healthyThreshold,
      unhealthyThreshold: active.unhealthyThreshold ?? d.unhealthyThreshold,
    };
  }

  const passive = spec.healthCheck?.passive;
  if (passive) {
    const d = DEFAULTS.outlierDetection;
    out.outlierDetection = {
      consecutiveFailures: passive.consecutiveFailures ?? d.consecutiveFailures,
      baseEjectionMs: duration(
        "spec.healthCheck.passive.baseEjectionTime",
        passive.baseEjectionTime,
        d.baseEjectionMs,
      ),
    };
  }

  if (SECTIONS.every(s => out[s] === undefined))
    problems.push(
      "spec sets nothing: give at least one of rateLimit, timeout, retry, loadBalancer, circuitBreaker, healthCheck.active, healthCheck.passive",
    );
  if (problems.length > 0) return problems.map(message => ({ reason: "Invalid", message }));
  return out;
}

function hashOn(
  hash: NonNullable<TrafficSpec["loadBalancer"]>["consistentHash"],
  problems: string[],
  duration: (field: string, value: string | undefined, fallback: number) => number,
): HashOn | undefined {
  if (hash === undefined) return undefined;
  const field = "spec.loadBalancer.consistentHash";
  if (hash.type !== "Header" && hash.header)
    problems.push(`${field}.header: only for type Header (type is ${hash.type}); remove it`);
  if (hash.type !== "Cookie" && hash.cookie)
    problems.push(`${field}.cookie: only for type Cookie (type is ${hash.type}); remove it`);
  switch (hash.type) {
    case "SourceIP":
      return { type: "SourceIP" };
    case "Header":
      if (!hash.header) problems.push(`${field}.header: required for type Header (its name)`);
      return { type: "Header", name: (hash.header?.name ?? "x").toLowerCase() };
    case "Cookie": {
      if (!hash.cookie) {
        problems.push(`${field}.cookie: required for type Cookie (its name)`);
        return { type: "Cookie", name: "x" };
      }
      const { name, ttl, path } = hash.cookie;
      const ttlMs = ttl === undefined ? undefined : duration(`${field}.cookie.ttl`, ttl, 1000);
      if (ttlMs !== undefined && ttlMs < 1000)
        problems.push(`${field}.cookie.ttl: ${ttl} is shorter than 1s (cookies count in seconds)`);
      return {
        type: "Cookie",
        name,
        ...(ttlMs !== undefined ? { ttlSeconds: Math.max(1, Math.floor(ttlMs / 1000)) } : {}),
        ...(path ? { path } : {}),
      };
    }
  }
}

function checkTargets(spec: TrafficSpec, problems: string[]): void {
  for (const [i, t] of (spec.targetRefs ?? []).entries()) {
    const field = `spec.targetRefs[${i}]`;
    if (t.kind === "Service" && t.group !== "")
      problems.push(`${field}: a Service is in the core group; set group: ""`);
    if (t.kind !== "Service" && t.group !== GATEWAY_GROUP)
      problems.push(`${field}: a ${t.kind} is in group ${GATEWAY_GROUP}`);
    if (t.kind === "Service" && t.sectionName !== undefined)
      problems.push(
        `${field}.sectionName: not supported for a Service (the policy applies to all its ports); remove it`,
      );
    for (const section of ["rateLimit", "timeout", "retry"] as const)
      if (t.kind === "Service" && spec[section])
        problems.push(
          `${field}: ${section} shapes the requests of routes, and a Service target has none; move ${section} to a policy that targets the HTTPRoute or the Gateway`,
        );
  }
  problems.push(...repeatedTargets(spec.targetRefs));
}
