// An OTLP/HTTP JSON traces endpoint for unit tests: what the proxy's exporter really sends,
// decoded into flat spans (the cluster-free counterpart of a Collector; test/helpers/otel-collector.ts
// runs the real one).
import http from "node:http";
import type net from "node:net";

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
  events?: Array<{ name: string; attributes?: KeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

export type Attr = string | number | boolean;
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, Attr>;
  events: Array<{ name: string; attributes: Record<string, Attr> }>;
  status: { code: number; message: string };
  resource: Record<string, Attr>;
}

function value(v: AnyValue): Attr {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? "";
}

export function attributes(list: KeyValue[] | undefined): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

/** Flat spans of one OTLP/JSON ExportTraceServiceRequest. */
export function spansOf(req: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          kind: s.kind,
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map(e => ({
            name: e.name,
            attributes: attributes(e.attributes),
          })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
          resource,
        });
  }
  return out;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  requests: number;
  /** Resolves once `n` spans arrived (rejects after timeoutMs, naming what did). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const rx: OtlpReceiver = {
    url: "",
    spans: [],
    requests: 0,
    waitFor: async (n, timeoutMs = 10_000) => {
      const until = Date.now() + timeoutMs;
      while (rx.spans.length < n) {
        if (Date.now() > until)
          throw new Error(`expected ${n} spans, the receiver got ${rx.spans.length}`);
        await new Promise(r => setTimeout(r, 20));
      }
      return rx.spans;
    },
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      rx.requests++;
      if (req.url !== "/v1/traces" || req.method !== "POST") {
        res.writeHead(404).end();
        return;
      }
      rx.spans.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString()) as ExportRequest));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
  rx.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  rx.close = () =>
    new Promise<void>(r => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return rx;
}
