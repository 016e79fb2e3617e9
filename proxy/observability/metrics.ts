// Prometheus metrics (prom-client), all prefixed rauta_. The route label is the route id (or
// "none" when nothing matched), never the raw path. Hot-path children are resolved once per
// route per generation (see RouteMetrics) so a request costs an increment and an observe; the
// per-request and per-plugin-call ones are hot-metrics.ts's, which make those two additions.
import client from "prom-client";
import type { Counter, Gauge } from "prom-client";
import { HotCounter, HotHistogram } from "./hot-metrics.ts";

export class Metrics {
  readonly registry: client.Registry;
  readonly requests: HotCounter<"route" | "code">;
  readonly duration: HotHistogram<"route">;
  readonly upstreamErrors: Counter<"cluster" | "kind">;
  readonly retries: Counter<"cluster">;
  readonly circuitState: Gauge<"cluster">;
  readonly configGeneration: Gauge;
  readonly configReloads: Counter<"result">;
  readonly configReloadFailures: Counter;
  readonly rateLimited: Counter<"route">;
  readonly rateLimitStoreErrors: Counter<"route" | "result">;
  readonly externalAuth: Counter<"route" | "result">;
  readonly credentialAuth: Counter<"route" | "method" | "result">;
  readonly tracingSpans: Counter<"result">;
  readonly tracingQueue: Gauge;
  readonly proxyProtocolErrors: Counter<"reason">;
  readonly grpcResponses: Counter<"route" | "grpc_status">;
  readonly tcpConnections: Counter<"route" | "result">;
  readonly tcpActive: Gauge<"route">;
  readonly tcpBytes: Counter<"route" | "direction">;
  readonly endpointHealth: Gauge<"cluster" | "endpoint">;
  readonly tlsErrors: Counter<"kind">;
  readonly mirrors: Counter<"cluster" | "result">;
  readonly contained: Counter<"phase">;
  readonly h2Refused: Counter<"reason">;
  readonly pluginCalls: HotCounter<"plugin" | "phase" | "result">;
  readonly pluginDuration: HotHistogram<"plugin" | "phase">;
  readonly pluginFailures: Counter<"plugin" | "reason">;
  readonly pluginReplacements: Counter<"plugin">;
  readonly pluginLoadErrors: Counter<"plugin" | "reason">;
  readonly pluginIsolated: Gauge<"plugin">;

  constructor(registry = new client.Registry(), processMetrics = true) {
    this.registry = registry;
    const r = [registry];
    // process and runtime metrics (RSS, heap spaces, GC, event-loop lag), prefixed rauta_
    if (processMetrics) client.collectDefaultMetrics({ register: registry, prefix: "rauta_" });
    this.requests = new HotCounter({
      name: "rauta_requests_total",
      help: "Downstream requests by route id and status class",
      labelNames: ["route", "code"],
      registers: r,
    });
    this.duration = new HotHistogram({
      name: "rauta_request_duration_seconds",
      help: "Downstream request latency (until the response ends) by route id",
      labelNames: ["route"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.grpcResponses = new client.Counter({
      name: "rauta_grpc_responses_total",
      help: "gRPC calls by route id and grpc-status (the backend's, or the gateway's own answer)",
      labelNames: ["route", "grpc_status"],
      registers: r,
    });
    this.tcpConnections = new client.Counter({
      name: "rauta_tcp_connections_total",
      help: "TLS-routed connections by route id and result (ok, no_route, no_backend, connect_error, client_hello, timeout)",
      labelNames: ["route", "result"],
      registers: r,
    });
    this.tcpActive = new client.Gauge({
      name: "rauta_tcp_active_connections",
      help: "TLS-routed connections open to a backend, by route id",
      labelNames: ["route"],
      registers: r,
    });
    this.tcpBytes = new client.Counter({
      name: "rauta_tcp_bytes_total",
      help: "Bytes spliced by TLS routes, by route id and direction (client_to_backend, backend_to_client), counted when a connection ends",
      labelNames: ["route", "direction"],
      registers: r,
    });
    this.upstreamErrors = new client.Counter({
      name: "rauta_upstream_errors_total",
      help: "Upstream failures by cluster and kind (connect, reset, timeout, status)",
      labelNames: ["cluster", "kind"],
      registers: r,
    });
    this.retries = new client.Counter({
      name: "rauta_upstream_retries_total",
      help: "Upstream retries by cluster",
      labelNames: ["cluster"],
      registers: r,
    });
    this.circuitState = new client.Gauge({
      name: "rauta_circuit_breaker_state",
      help: "Circuit breaker state by cluster: 0 closed, 1 half-open, 2 open",
      labelNames: ["cluster"],
      aggregator: "max",
      registers: r,
    });
    this.configGeneration = new client.Gauge({
      name: "rauta_config_generation",
      help: "Generation of the config being served",
      aggregator: "max",
      registers: r,
    });
    this.configReloads = new client.Counter({
      name: "rauta_config_reloads_total",
      help: "Config load attempts by result",
      labelNames: ["result"],
      registers: r,
    });
    this.configReloadFailures = new client.Counter({
      name: "rauta_config_reload_failures_total",
      help: "Configs refused (invalid or failed to prepare); the previous one kept serving",
      registers: r,
    });
    this.rateLimited = new client.Counter({
      name: "rauta_rate_limited_total",
      help: "Requests refused by rate limiting (local or global), by route id",
      labelNames: ["route"],
      registers: r,
    });
    this.rateLimitStoreErrors = new client.Counter({
      name: "rauta_rate_limit_store_errors_total",
      help: "Global rate limit checks the store (Redis) did not answer in time, by route id and what the failure mode made of the request (allowed: FailOpen, denied: FailClosed)",
      labelNames: ["route", "result"],
      registers: r,
    });
    this.externalAuth = new client.Counter({
      name: "rauta_external_auth_total",
      help: "ExternalAuth checks by route id and result (allowed, denied, error: failed closed)",
      labelNames: ["route", "result"],
      registers: r,
    });
    this.credentialAuth = new client.Counter({
      name: "rauta_credential_auth_total",
      help: "Basic-auth and API-key checks by route id, method (basic, api_key) and result (allowed, missing: no credentials sent, denied: wrong ones, unavailable: the Secret is not loaded)",
      labelNames: ["route", "method", "result"],
      registers: r,
    });
    this.tracingSpans = new client.Counter({
      name: "rauta_tracing_spans_total",
      help: "Request spans by fate: exported, export_failed (the collector refused or was unreachable), dropped (the export queue was full)",
      labelNames: ["result"],
      registers: r,
    });
    this.tracingQueue = new client.Gauge({
      name: "rauta_tracing_queue_spans",
      help: "Spans waiting for (or in) an export to the collector; bounded per pipeline",
      registers: r,
    });
    this.proxyProtocolErrors = new client.Counter({
      name: "rauta_proxy_protocol_errors_total",
      help: "Connections closed on a listener that expects the PROXY protocol: invalid (missing or malformed header) or timeout",
      labelNames: ["reason"],
      registers: r,
    });
    this.endpointHealth = new client.Gauge({
      name: "rauta_endpoint_healthy",
      help: "Active health check verdict per cluster and endpoint (1 healthy); clusters with a healthCheck only",
      labelNames: ["cluster", "endpoint"],
      aggregator: "min",
      registers: r,
    });
    this.tlsErrors = new client.Counter({
      name: "rauta_tls_errors_total",
      help: "TLS problems (missing or invalid certificate secrets, handshake errors)",
      labelNames: ["kind"],
      registers: r,
    });
    this.mirrors = new client.Counter({
      name: "rauta_mirror_requests_total",
      help: "Mirrored requests by cluster and result",
      labelNames: ["cluster", "result"],
      registers: r,
    });
    this.contained = new client.Counter({
      name: "rauta_contained_errors_total",
      help: "Exceptions raised while handling one request or connection, ended with a 5xx or a closed connection instead of the worker, by phase",
      labelNames: ["phase"],
      registers: r,
    });
    this.h2Refused = new client.Counter({
      name: "rauta_http2_sessions_refused_total",
      help: "HTTP/2 sessions closed with GOAWAY for abuse, by reason (rapid_reset)",
      labelNames: ["reason"],
      registers: r,
    });
    this.pluginCalls = new HotCounter({
      name: "rauta_plugin_calls_total",
      help: "WASM plugin calls by plugin, phase (request, response) and result (continue, reject, modify, failure, skipped)",
      labelNames: ["plugin", "phase", "result"],
      registers: r,
    });
    this.pluginDuration = new HotHistogram({
      name: "rauta_plugin_call_duration_seconds",
      help: "Time spent inside one WASM plugin call",
      labelNames: ["plugin", "phase"],
      buckets: [
        0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1,
      ],
      registers: r,
    });
    this.pluginFailures = new client.Counter({
      name: "rauta_plugin_failures_total",
      help: "WASM plugin call failures by reason (timeout, memory, trap, error, output, unavailable)",
      labelNames: ["plugin", "reason"],
      registers: r,
    });
    this.pluginReplacements = new client.Counter({
      name: "rauta_plugin_instance_replacements_total",
      help: "Plugin instances discarded after a failure and replaced",
      labelNames: ["plugin"],
      registers: r,
    });
    this.pluginIsolated = new client.Gauge({
      name: "rauta_plugin_isolated",
      help: "1 when a plugin's calls run in a worker thread (isolation Worker, or Auto after it hit its time limit)",
      labelNames: ["plugin"],
      aggregator: "max",
      registers: r,
    });
    this.pluginLoadErrors = new client.Counter({
      name: "rauta_plugin_load_errors_total",
      help: "Plugin modules that could not be loaded, by reason (InvalidSource, SourceNotFound, DigestMismatch, InvalidModule, MissingExport, LoadFailed)",
      labelNames: ["plugin", "reason"],
      registers: r,
    });
  }

  forgetRoute(routeId: string) {
    for (const code of CLASSES) this.requests.remove(routeId, code);
    this.duration.remove(routeId);
    this.rateLimited.remove(routeId);
    for (const result of ["allowed", "denied"]) this.rateLimitStoreErrors.remove(routeId, result);
    for (const result of ["allowed", "denied", "error"]) this.externalAuth.remove(routeId, result);
    for (const method of ["basic", "api_key"])
      for (const result of ["allowed", "missing", "denied", "unavailable"])
        this.credentialAuth.remove(routeId, method, result);
    for (const result of ["ok", "connect_error", "timeout", "no_backend"])
      this.tcpConnections.remove(routeId, result);
    this.tcpActive.remove(routeId);
    for (const direction of ["client_to_backend", "backend_to_client"])
      this.tcpBytes.remove(routeId, direction);
    // gRPC status codes are 0–16
    for (let code = 0; code <= 16; code++) this.grpcResponses.remove(routeId, String(code));
  }

  route(routeId: string): RouteMetrics {
    return new RouteMetrics(this, routeId);
  }
}

const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

export class RouteMetrics {
  private readonly byClass: Array<{ inc(): void }>;
  private readonly hist: { observe(v: number): void };
  constructor(m: Metrics, routeId: string) {
    this.byClass = CLASSES.map(c => m.requests.labels(routeId, c));
    this.hist = m.duration.labels(routeId);
  }
  record(status: number, seconds: number) {
    const i = ((status / 100) | 0) - 1;
    this.byClass[i < 0 ? 0 : i > 4 ? 4 : i]!.inc();
    this.hist.observe(seconds);
  }
}
