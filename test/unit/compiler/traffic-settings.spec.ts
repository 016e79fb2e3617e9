// BackendTrafficPolicy specs → config settings, field by field, and the problems admission
// refuses with (the same function decides both).
import { expect } from "chai";
import { parse } from "yaml";
import { validateBackendTrafficPolicy } from "../../../capabilities/admission/backend-traffic-policy.ts";
import type { BackendTrafficPolicy } from "../../../capabilities/compiler/snapshot.ts";
import { compileTrafficSpec } from "../../../capabilities/compiler/traffic-settings.ts";
import type {
  TrafficSettings,
  TrafficSpec,
} from "../../../capabilities/compiler/traffic-settings.ts";

const ROUTE = "targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}]\n";

function settings(yaml: string): TrafficSettings {
  const out = compileTrafficSpec(parse(ROUTE + yaml) as TrafficSpec);
  if (Array.isArray(out)) throw new Error(out.map(p => p.message).join("; "));
  return out;
}

function refused(yaml: string, targets = ROUTE): string[] {
  const policy = {
    apiVersion: "rauta.io/v1alpha1",
    kind: "BackendTrafficPolicy",
    metadata: { name: "p", namespace: "apps" },
    spec: parse(targets + yaml) as TrafficSpec,
  } as BackendTrafficPolicy;
  return validateBackendTrafficPolicy(policy);
}

describe("BackendTrafficPolicy settings", () => {
  describe("rateLimit (local and global)", () => {
    it("counts requests per unit, with burst defaulting to requests and the key to ClientIP", () => {
      expect(settings("rateLimit: {local: {requests: 10, unit: Second}}").rateLimit).to.deep.equal({
        requests: 10,
        intervalMs: 1000,
        burst: 10,
        key: { type: "ClientIP" },
      });
      expect(
        settings("rateLimit: {local: {requests: 100, unit: Minute, burst: 5}}").rateLimit,
      ).to.include({ intervalMs: 60_000, burst: 5 });
      expect(
        settings("rateLimit: {local: {requests: 1, unit: Hour}}").rateLimit?.intervalMs,
      ).to.equal(3_600_000);
    });

    it("keys by a header (lowercased) or one bucket for the whole route", () => {
      expect(
        settings(
          "rateLimit: {local: {requests: 1, unit: Second, key: {type: Header, header: X-Api-Key}}}",
        ).rateLimit?.key,
      ).to.deep.equal({ type: "Header", name: "x-api-key" });
      expect(
        settings("rateLimit: {local: {requests: 1, unit: Second, key: {type: Route}}}").rateLimit
          ?.key,
      ).to.deep.equal({ type: "Route" });
    });

    it("refuses a Header key without its header, and a header on another key type", () => {
      expect(
        refused("rateLimit: {local: {requests: 1, unit: Second, key: {type: Header}}}"),
      ).to.deep.equal([
        "BackendTrafficPolicy apps/p: spec.rateLimit.local.key.header: required for type Header (the header name)",
      ]);
      expect(
        refused(
          "rateLimit: {local: {requests: 1, unit: Second, key: {type: ClientIP, header: x}}}",
        )[0],
      ).to.include("only for type Header (type is ClientIP)");
    });

    it("global: the same bucket, one budget in Redis; FailOpen by default", () => {
      expect(
        settings(
          "rateLimit: {global: {requests: 5, unit: Second, burst: 10, key: {type: Route}, redis: {url: 'redis://redis:6379'}}}",
        ).rateLimit,
      ).to.deep.equal({
        requests: 5,
        intervalMs: 1000,
        burst: 10,
        key: { type: "Route" },
        global: { redisUrl: "redis://redis:6379", failureMode: "FailOpen" },
      });
      expect(
        settings(
          "rateLimit: {global: {requests: 1, unit: Hour, redis: {url: 'rediss://r.infra:6380/3'}, failureMode: FailClosed}}",
        ).rateLimit?.global,
      ).to.deep.equal({ redisUrl: "rediss://r.infra:6380/3", failureMode: "FailClosed" });
    });

    it("refuses both local and global, neither, and a Redis URL it cannot use", () => {
      expect(
        refused(
          "rateLimit: {local: {requests: 1, unit: Second}, global: {requests: 1, unit: Second, redis: {url: 'redis://r:6379'}}}",
        ),
      ).to.deep.equal([
        "BackendTrafficPolicy apps/p: spec.rateLimit: give local (each replica counts on its own) or global (one budget in Redis), not both",
      ]);
      expect(refused("rateLimit: {}")[0]).to.equal(
        "BackendTrafficPolicy apps/p: spec.rateLimit: give local or global",
      );
      for (const url of ["http://r:6379", "redis://user:pw@r:6379", "redis://r:6379/x"])
        expect(
          refused(`rateLimit: {global: {requests: 1, unit: Second, redis: {url: '${url}'}}}`)[0],
        ).to.include("is not a redis://host:port or rediss://host:port URL");
      expect(
        refused(
          "rateLimit: {global: {requests: 1, unit: Second, key: {type: Header}, redis: {url: 'redis://r:6379'}}}",
        )[0],
      ).to.include("spec.rateLimit.global.key.header: required for type Header");
    });

    it("refuses rateLimit on a policy that targets a Service", () => {
      expect(
        refused(
          "rateLimit: {local: {requests: 1, unit: Second}}",
          'targetRefs: [{group: "", kind: Service, name: web}]\n',
        )[0],
      ).to.include("move rateLimit to a policy that targets the HTTPRoute or the Gateway");
    });
  });

  describe("timeout and retry (defaults for rules that set none)", () => {
    it("turns durations into milliseconds, 0s kept (it turns a timeout off)", () => {
      expect(settings("timeout: {request: 30s, backendRequest: 0s}").timeout).to.deep.equal({
        requestMs: 30_000,
        backendRequestMs: 0,
      });
      expect(
        settings("retry: {attempts: 2, statusCodes: [503, 502, 503], backoff: 100ms}").retry,
      ).to.deep.equal({ attempts: 2, codes: [502, 503], backoffMs: 100 });
      expect(settings("retry: {attempts: 1}").retry).to.deep.equal({ attempts: 1, codes: [] });
    });

    it("refuses a try timeout longer than the whole request's, and both on a Service target", () => {
      expect(refused("timeout: {request: 1s, backendRequest: 2s}")[0]).to.include(
        "spec.timeout.backendRequest (2s) is longer than spec.timeout.request (1s)",
      );
      const service = 'targetRefs: [{group: "", kind: Service, name: web}]\n';
      expect(refused("retry: {attempts: 1}", service)[0]).to.include("move retry to a policy");
      expect(refused("timeout: {request: 1s}", service)[0]).to.include("move timeout to a policy");
    });
  });

  describe("loadBalancer", () => {
    it("maps RoundRobin, LeastRequest and ConsistentHash (source IP by default)", () => {
      expect(settings("loadBalancer: {type: RoundRobin}").loadBalancer).to.deep.equal({
        lb: "round-robin",
      });
      expect(settings("loadBalancer: {type: LeastRequest}").loadBalancer).to.deep.equal({
        lb: "least-request",
      });
      expect(settings("loadBalancer: {type: ConsistentHash}").loadBalancer).to.deep.equal({
        lb: "maglev",
      });
    });

    it("hashes on a header or a cookie (with its Max-Age and path)", () => {
      expect(
        settings(
          "loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: X-User}}}",
        ).loadBalancer,
      ).to.deep.equal({ lb: "maglev", hashOn: { type: "Header", name: "x-user" } });
      expect(
        settings(
          "loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie, cookie: {name: sid, ttl: 1h30m, path: /app}}}",
        ).loadBalancer,
      ).to.deep.equal({
        lb: "maglev",
        hashOn: { type: "Cookie", name: "sid", ttlSeconds: 5400, path: "/app" },
      });
      expect(
        settings("loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP}}")
          .loadBalancer,
      ).to.deep.equal({ lb: "maglev", hashOn: { type: "SourceIP" } });
    });

    it("refuses consistentHash on another type, a missing key, and a cookie ttl under 1s", () => {
      expect(
        refused("loadBalancer: {type: LeastRequest, consistentHash: {type: SourceIP}}")[0],
      ).to.include("only for type ConsistentHash (type is LeastRequest)");
      expect(
        refused("loadBalancer: {type: ConsistentHash, consistentHash: {type: Header}}")[0],
      ).to.include("consistentHash.header: required for type Header");
      expect(
        refused("loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie}}")[0],
      ).to.include("consistentHash.cookie: required for type Cookie");
      expect(
        refused(
          "loadBalancer: {type: ConsistentHash, consistentHash: {type: Cookie, cookie: {name: s, ttl: 500ms}}}",
        )[0],
      ).to.include("shorter than 1s");
    });
  });

  describe("circuitBreaker", () => {
    it("fills the documented defaults and turns errorPercent into a ratio", () => {
      expect(settings("circuitBreaker: {}").circuitBreaker).to.deep.equal({
        windowMs: 10_000,
        minRequests: 20,
        errorRatio: 0.5,
        openMs: 30_000,
        halfOpenProbes: 1,
        errorStatuses: false,
      });
      expect(
        settings(
          "circuitBreaker: {errorPercent: 20, minRequests: 4, window: 2s, openDuration: 1m, halfOpenRequests: 3, countErrorStatuses: true}",
        ).circuitBreaker,
      ).to.deep.equal({
        windowMs: 2000,
        minRequests: 4,
        errorRatio: 0.2,
        openMs: 60_000,
        halfOpenProbes: 3,
        errorStatuses: true,
      });
    });

    it("refuses a window under 100ms (the breaker counts in tenths of it)", () => {
      expect(refused("circuitBreaker: {window: 50ms}")[0]).to.include(
        "spec.circuitBreaker.window: 50ms is shorter than 100ms",
      );
    });
  });

  describe("healthCheck", () => {
    it("active HTTP: path / and the default thresholds unless given", () => {
      expect(settings("healthCheck: {active: {type: HTTP}}").healthCheck).to.deep.equal({
        type: "HTTP",
        path: "/",
        intervalMs: 5000,
        timeoutMs: 1000,
        healthyThreshold: 1,
        unhealthyThreshold: 3,
      });
      expect(
        settings(
          "healthCheck: {active: {type: HTTP, http: {path: /ready, hostname: app.internal, expectedStatuses: [204, 200, 200]}, interval: 500ms, timeout: 200ms, healthyThreshold: 2, unhealthyThreshold: 4}}",
        ).healthCheck,
      ).to.deep.equal({
        type: "HTTP",
        path: "/ready",
        hostname: "app.internal",
        expectedStatuses: [200, 204],
        intervalMs: 500,
        timeoutMs: 200,
        healthyThreshold: 2,
        unhealthyThreshold: 4,
      });
    });

    it("active TCP has no http block; a timeout longer than the interval is refused", () => {
      expect(settings("healthCheck: {active: {type: TCP}}").healthCheck?.type).to.equal("TCP");
      expect(refused("healthCheck: {active: {type: TCP, http: {path: /}}}")[0]).to.include(
        "only for type HTTP (type is TCP)",
      );
      expect(
        refused("healthCheck: {active: {type: TCP, interval: 1s, timeout: 2s}}")[0],
      ).to.include("probes would pile up");
    });

    it("passive: outlier detection with its defaults, 0 turning ejection off", () => {
      expect(settings("healthCheck: {passive: {}}").outlierDetection).to.deep.equal({
        consecutiveFailures: 5,
        baseEjectionMs: 30_000,
      });
      expect(
        settings("healthCheck: {passive: {consecutiveFailures: 0, baseEjectionTime: 1m}}")
          .outlierDetection,
      ).to.deep.equal({ consecutiveFailures: 0, baseEjectionMs: 60_000 });
    });
  });

  describe("targets", () => {
    it("refuses a policy that sets nothing, wrong groups, Service sections and repeats", () => {
      expect(refused("")[0]).to.include("spec sets nothing");
      expect(
        refused(
          "circuitBreaker: {}",
          "targetRefs: [{group: gateway.networking.k8s.io, kind: Service, name: web}, {group: '', kind: Gateway, name: gw}]\n",
        ),
      ).to.deep.equal([
        'BackendTrafficPolicy apps/p: spec.targetRefs[0]: a Service is in the core group; set group: ""',
        "BackendTrafficPolicy apps/p: spec.targetRefs[1]: a Gateway is in group gateway.networking.k8s.io",
      ]);
      expect(
        refused(
          "circuitBreaker: {}",
          "targetRefs: [{group: '', kind: Service, name: web, sectionName: http}]\n",
        )[0],
      ).to.include("not supported for a Service");
      expect(
        refused(
          "circuitBreaker: {}",
          "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n",
        )[0],
      ).to.include("spec.targetRefs[1]: the same target as an earlier entry");
    });

    it("accepts a valid policy with every section", () => {
      expect(
        refused(
          "rateLimit: {local: {requests: 5, unit: Second}}\nloadBalancer: {type: LeastRequest}\ncircuitBreaker: {}\nhealthCheck: {active: {type: TCP}, passive: {}}",
        ),
      ).to.deep.equal([]);
    });
  });
});
