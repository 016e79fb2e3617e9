// A real OpenTelemetry Collector (hack/otelcol: the OTLP receiver and the file exporter, built from
// the collector's Go modules) for the tracing integration test and benchmark. Built once per
// source hash into ~/.cache/rauta (about a minute cold), started per test on a free loopback port.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { moduleBinary } from "../../hack/cluster/build.ts";
import { freePort } from "./net.ts";
import { spansOf } from "./otlp-receiver.ts";
import type { ReceivedSpan } from "./otlp-receiver.ts";

const modDir = fileURLToPath(new URL("../../hack/otelcol/", import.meta.url));

export function otelCollectorBinary(): string {
  return moduleBinary(
    modDir,
    "otelcol",
    "rauta-otelcol",
    "OpenTelemetry Collector (otlp receiver, file exporter)",
  );
}

export interface OtelCollector {
  /** The OTLP/HTTP base URL (the exporter appends /v1/traces). */
  endpoint: string;
  /** Every span the file exporter has written so far. */
  spans(): ReceivedSpan[];
  /** Resolves once `n` spans are in the file (rejects after timeoutMs, naming how many are). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** SIGSTOP: a collector that hangs — connections are accepted by the kernel, never answered. */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

function configYaml(port: number, file: string): string {
  return `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${port}
exporters:
  file:
    path: ${file}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`;
}

async function ready(port: number, p: ChildProcess, log: () => string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`the collector exited (${p.exitCode}): ${log()}`);
    try {
      // the receiver answers 405 to a GET on /v1/traces once it listens
      await fetch(`http://127.0.0.1:${port}/v1/traces`);
      return;
    } catch {
      if (Date.now() > until) throw new Error(`the collector did not listen in 30 s: ${log()}`);
      await new Promise(r => setTimeout(r, 100));
    }
  }
}

export async function startOtelCollector(): Promise<OtelCollector> {
  const bin = otelCollectorBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-otelcol-"));
  const file = path.join(dir, "spans.jsonl");
  const port = await freePort();
  fs.writeFileSync(path.join(dir, "config.yaml"), configYaml(port, file));
  let output = "";
  const p = spawn(bin, ["--config", path.join(dir, "config.yaml")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  p.stdout.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  p.stderr.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  await ready(port, p, () => output);
  const spans = (): ReceivedSpan[] => {
    if (!fs.existsSync(file)) return [];
    // one ExportTraceServiceRequest per line; the last line may still be half written
    return fs
      .readFileSync(file, "utf8")
      .split("\n")
      .flatMap(line => {
        try {
          return line ? spansOf(JSON.parse(line) as Parameters<typeof spansOf>[0]) : [];
        } catch {
          return [];
        }
      });
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    waitFor: async (n, timeoutMs = 15_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const got = spans();
        if (got.length >= n) return got;
        if (Date.now() > until)
          throw new Error(`expected ${n} spans in the collector's file, it has ${got.length}`);
        await new Promise(r => setTimeout(r, 100));
      }
    },
    freeze: () => p.kill("SIGSTOP"),
    thaw: () => p.kill("SIGCONT"),
    stop: async () => {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGCONT");
        const exited = new Promise(r => p.once("exit", r));
        p.kill("SIGTERM");
        const t = setTimeout(() => p.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/**
 * What a proxy says of its spans on its /metrics: rauta_tracing_spans_total by result (exported,
 * export_failed, dropped; 0 when absent) and the queue gauge (queued). A fresh connection per
 * call: a kept-alive one may be closed by the server just as it is reused.
 */
export async function tracingCounters(metricsPort: number): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) =>
    http
      .get(`http://127.0.0.1:${metricsPort}/metrics`, { agent: false }, res => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject),
  );
  const out: Record<string, number> = { exported: 0, export_failed: 0, dropped: 0 };
  for (const m of text.matchAll(/^rauta_tracing_spans_total\{result="(\w+)"\} (\d+)/gm))
    out[m[1]!] = Number(m[2]);
  out.queued = Number(/^rauta_tracing_queue_spans (\d+)/m.exec(text)?.[1] ?? 0);
  return out;
}
