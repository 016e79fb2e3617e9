// OpenTelemetry tracing of proxied requests: one SERVER span per request, W3C trace context
// (traceparent/tracestate) taken from the client and passed on to the backend with the
// gateway's span as the parent, exported over OTLP/HTTP in batches.
//
// Export must never block or slow the request path, whatever the collector does: spans wait in
// one bounded queue per pipeline; when it is full (a collector down or slower than the traffic)
// new spans are dropped and counted (rauta_tracing_spans_total{result="dropped"}), never held.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags } from "@opentelemetry/api";
import type { Attributes, Context, Span, TextMapGetter } from "@opentelemetry/api";
import { ExportResultCode, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { ReadableSpan, Sampler, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import type { Tracer } from "@opentelemetry/api";
import type { Tracing } from "../config/schema.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

export type TracingSettings = Tracing;

export interface TracingOptions {
  /** spans waiting for export, per pipeline, before new ones are dropped */
  maxQueueSpans: number;
  maxBatchSpans: number;
  /** how long a batch may wait for more spans */
  batchDelayMs: number;
  /** one export request's deadline (a collector that accepts the connection and hangs) */
  exportTimeoutMs: number;
}

export const DEFAULT_TRACING_OPTIONS: TracingOptions = {
  maxQueueSpans: 2048,
  maxBatchSpans: 512,
  batchDelayMs: 1000,
  exportTimeoutMs: 10_000,
};

/** The traces URL for an endpoint given as a collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT). */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/traces";
  return u.toString();
}

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  get: (carrier, key) => carrier[key],
  keys: carrier => Object.keys(carrier),
};
const propagator = new W3CTraceContextPropagator();

// Counts what becomes of every span handed over (exported, failed, dropped) and keeps the queue
// bounded: the SDK's batch processor drops silently, this one drops first and counts.
class BoundedProcessor implements SpanProcessor {
  private readonly inner: BatchSpanProcessor;
  private queued = 0;
  private readonly max: number;
  private readonly onDrop: () => void;
  private readonly onQueue: (delta: number) => void;

  constructor(
    exporter: CountingExporter,
    opts: TracingOptions,
    onDrop: () => void,
    onQueue: (delta: number) => void,
  ) {
    this.max = opts.maxQueueSpans;
    this.onDrop = onDrop;
    this.onQueue = onQueue;
    exporter.onSettled = n => {
      this.queued -= n;
      this.onQueue(-n);
    };
    this.inner = new BatchSpanProcessor({
      exporter,
      // never reached: this processor refuses spans past max first (a span being exported still
      // counts here, so the SDK's queue holds at most as many)
      maxQueueSize: opts.maxQueueSpans,
      maxExportBatchSize: Math.min(opts.maxBatchSpans, opts.maxQueueSpans),
      scheduledDelayMillis: opts.batchDelayMs,
      exportTimeoutMillis: opts.exportTimeoutMs,
    });
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.queued >= this.max) return this.onDrop();
    this.queued++;
    this.onQueue(1);
    this.inner.onEnd(span);
  }

  /** spans waiting for (or in) an export */
  get pending(): number {
    return this.queued;
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

class CountingExporter implements SpanExporter {
  private readonly inner: SpanExporter;
  private readonly onResult: (ok: boolean, spans: number, error: Error | undefined) => void;
  onSettled: (spans: number) => void = () => {};

  constructor(
    inner: SpanExporter,
    onResult: (ok: boolean, spans: number, error: Error | undefined) => void,
  ) {
    this.inner = inner;
    this.onResult = onResult;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let settled = false;
    const settle = (result: ExportResult) => {
      if (settled) return;
      settled = true;
      this.onSettled(spans.length);
      this.onResult(result.code === ExportResultCode.SUCCESS, spans.length, result.error);
      done(result);
    };
    try {
      this.inner.export(spans, settle);
    } catch (err) {
      settle({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function samplerFor(s: TracingSettings): Sampler {
  const root =
    s.samplingRatio >= 1
      ? new AlwaysOnSampler()
      : s.samplingRatio <= 0
        ? new AlwaysOffSampler()
        : new TraceIdRatioBasedSampler(s.samplingRatio);
  return s.parentBased ? new ParentBasedSampler({ root }) : root;
}

/** One export pipeline: a tracer provider with its sampler, queue and OTLP exporter. */
class Pipeline {
  readonly key: string;
  readonly tracer: Tracer;
  readonly processor: BoundedProcessor;
  private readonly provider: TracerProvider;

  constructor(settings: TracingSettings, opts: TracingOptions, metrics: Metrics, logger: Logger) {
    this.key = pipelineKey(settings);
    const url = tracesUrl(settings.endpoint);
    let failing = false;
    const exporter = new CountingExporter(
      new OTLPTraceExporter({ url, timeoutMillis: opts.exportTimeoutMs, concurrencyLimit: 4 }),
      (ok, n, error) => {
        metrics.tracingSpans.labels(ok ? "exported" : "export_failed").inc(n);
        // one line when export starts failing and one when it recovers, not one per batch
        if (!ok && !failing)
          logger.warn("trace export failing; spans are dropped until the collector answers", {
            endpoint: url,
            error: error?.message ?? "unknown",
          });
        else if (ok && failing) logger.info("trace export recovered", { endpoint: url });
        failing = !ok;
      },
    );
    this.processor = new BoundedProcessor(
      exporter,
      opts,
      () => metrics.tracingSpans.labels("dropped").inc(),
      d => metrics.tracingQueue.inc(d),
    );
    this.provider = new TracerProvider({
      sampler: samplerFor(settings),
      resource: resourceFromAttributes({ "service.name": settings.serviceName }),
      spanProcessors: [this.processor],
    });
    this.tracer = this.provider.getTracer("rauta");
  }

  /** Exports what is queued (bounded by the export deadline) and stops. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown().catch(() => {});
  }
}

function pipelineKey(s: TracingSettings): string {
  return JSON.stringify([s.endpoint, s.samplingRatio, s.parentBased, s.serviceName]);
}

/**
 * The tracing pipelines of one proxy process, one per distinct settings; a pipeline outlives
 * config swaps while some listener keeps its settings (its queue and connection stay).
 */
export class Tracers {
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly opts: TracingOptions;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /** the proxy's own settings (flags), for listeners their config sets none for */
  readonly defaults: TracingSettings | null;

  constructor(
    metrics: Metrics,
    logger: Logger,
    defaults: TracingSettings | null = null,
    opts: Partial<TracingOptions> = {},
  ) {
    this.metrics = metrics;
    this.logger = logger;
    this.defaults = defaults;
    this.opts = { ...DEFAULT_TRACING_OPTIONS, ...opts };
  }

  /** The tracer of a listener's settings (config, else the proxy's defaults); null: no tracing. */
  tracerFor(settings: TracingSettings | undefined): RequestTracer | null {
    const s = settings ?? this.defaults;
    if (s === null) return null;
    const key = pipelineKey(s);
    let p = this.pipelines.get(key);
    if (p === undefined) {
      p = new Pipeline(s, this.opts, this.metrics, this.logger);
      this.pipelines.set(key, p);
    }
    return new RequestTracer(p);
  }

  /** Stops the pipelines no tracer in `used` belongs to (after a swap, once idle). */
  retainOnly(used: Iterable<RequestTracer>): void {
    const keep = new Set<string>();
    for (const t of used) keep.add(t.pipeline.key);
    for (const [k, p] of this.pipelines) {
      if (keep.has(k)) continue;
      this.pipelines.delete(k);
      void p.shutdown();
    }
  }

  /** spans waiting for export, all pipelines */
  get pending(): number {
    let n = 0;
    for (const p of this.pipelines.values()) n += p.processor.pending;
    return n;
  }

  async close(): Promise<void> {
    const all = [...this.pipelines.values()];
    this.pipelines.clear();
    await Promise.all(all.map(p => p.shutdown()));
  }
}

/** What the request path knows when a request starts. */
export interface RequestStart {
  method: string;
  path: string;
  query: string;
  scheme: string;
  host: string;
  port: number;
  client: string;
  protocol: string;
  userAgent: string | undefined;
  routeId: string | null;
}

/** A listener's handle on its pipeline. */
export class RequestTracer {
  readonly pipeline: Pipeline;

  constructor(pipeline: Pipeline) {
    this.pipeline = pipeline;
  }

  /** Starts the request's span, a child of the client's traceparent when it sent a valid one. */
  start(headers: Record<string, string | string[] | undefined>, r: RequestStart): RequestSpan {
    const parent: Context =
      headers.traceparent === undefined
        ? ROOT_CONTEXT
        : propagator.extract(ROOT_CONTEXT, headers, headerGetter);
    // attributes only for a span that records: our samplers never look at them, and most spans
    // at a low sampling ratio record nothing
    const span = this.pipeline.tracer.startSpan(
      r.routeId === null ? r.method : `${r.method} ${r.routeId}`,
      { kind: SpanKind.SERVER },
      parent,
    );
    if (!span.isRecording()) return new RequestSpan(span);
    const attributes: Attributes = {
      "http.request.method": r.method,
      "url.path": r.path,
      "url.scheme": r.scheme,
      "server.address": r.host,
      "server.port": r.port,
      "client.address": r.client,
      "network.protocol.version": r.protocol,
    };
    if (r.query !== "") attributes["url.query"] = r.query;
    if (r.userAgent !== undefined) attributes["user_agent.original"] = r.userAgent;
    if (r.routeId !== null) attributes["rauta.route"] = r.routeId;
    span.setAttributes(attributes);
    return new RequestSpan(span);
  }
}

const hex2 = (n: number) => (n < 16 ? `0${n.toString(16)}` : n.toString(16));

/** One request's span, ended exactly once with the response status. */
export class RequestSpan {
  private readonly span: Span;
  private ended = false;
  readonly traceId: string;
  /** the traceparent the backend gets: this span as its parent */
  readonly traceparent: string;
  readonly tracestate: string | undefined;

  constructor(span: Span) {
    this.span = span;
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.traceparent = `00-${sc.traceId}-${sc.spanId}-${hex2(sc.traceFlags & 0xff)}`;
    this.tracestate = sc.traceState?.serialize() || undefined;
  }

  get sampled(): boolean {
    return (this.span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
  }

  /** The backend the request goes to, set on each try (the last one's stays). */
  upstream(cluster: string, address: string, port: number, attempt: number): void {
    if (!this.span.isRecording()) return;
    this.span.setAttribute("rauta.backend", cluster);
    this.span.setAttribute("rauta.upstream.address", address);
    this.span.setAttribute("rauta.upstream.port", port);
    if (attempt > 1) this.span.setAttribute("rauta.attempts", attempt);
  }

  /** A try that failed and is retried (after delayMs). */
  retry(attempt: number, reason: string, delayMs: number): void {
    if (!this.span.isRecording()) return;
    this.span.addEvent("retry", {
      "rauta.attempt": attempt,
      "rauta.retry.reason": reason,
      "rauta.retry.delay_ms": Math.round(delayMs),
    });
  }

  end(status: number, routeId: string | null, detail?: string): void {
    if (this.ended) return;
    this.ended = true;
    const s = this.span;
    if (s.isRecording()) {
      s.setAttribute("http.response.status_code", status);
      if (routeId !== null) s.setAttribute("rauta.route", routeId);
      // OTel HTTP semantics: a server span is an error for 5xx only (4xx is the client's); 499
      // is a client that went away
      if (status >= 500) {
        s.setAttribute("error.type", String(status));
        s.setStatus({ code: SpanStatusCode.ERROR, ...(detail ? { message: detail } : {}) });
      }
    }
    s.end();
  }
}

export const traceContextHeaders = new Set(["traceparent", "tracestate"]);
