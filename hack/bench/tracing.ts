// Tracing benchmark (`npm run bench:tracing`): what OpenTelemetry tracing costs on the request
// path, in one run, against the same route untraced. Each target is `rauta serve --workers 1` on
// the same Gateway API YAML in front of one nginx upstream (`return 200`), loaded with
// `wrk -t1 -c50`; spans go to a real OpenTelemetry Collector (built from Go modules,
// test/helpers/otel-collector.ts; file exporter). Rounds are interleaved, each
// starting with another target; best round per target.
//   - tracing off
//   - 1 % of new traces sampled               (target ≥ 0.9× off)
//   - 100 % sampled                           (target ≥ 0.7× off)
//   - 100 % sampled, the collector stopped    (target ≥ 0.95× the same with the collector up:
//     a dead collector costs nothing beyond the spans themselves; they are dropped, not queued)
// Writes docs/benchmarks.md between the tracing-bench markers.
//   npm run bench:tracing                BENCH_DURATION=5 BENCH_ROUNDS=5 by default
//   npm run bench:tracing -- --no-write
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import { startOtelCollector } from "../../test/helpers/otel-collector.ts";
import { CONNECTIONS, DURATION, ensureTools, kill, writeBenchmarkSection } from "./lib.ts";
import {
  benchGatewayYaml,
  roundsLine,
  runRounds,
  serveTarget,
  startNginxUpstream,
  upstreamYaml,
} from "./serve-target.ts";
import type { Rounds, ServeTarget } from "./serve-target.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const write = !process.argv.includes("--no-write");

const OFF = "tracing off";
const ONE = "1 % sampled";
const ALL = "100 % sampled";
const DEAD = "100 % sampled, collector stopped";

function gatewayYaml(port: number, upstream: number): string {
  return `${[
    benchGatewayYaml(port),
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bench, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  rules:
    - backendRefs: [{ name: up, port: 80 }]`,
    upstreamYaml(upstream),
  ].join("\n---\n")}\n`;
}

/** rauta_tracing_spans_total by result, and the queue gauge, from the serve's /metrics. */
async function tracingCounters(metricsPort: number): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) =>
    http
      .get(`http://127.0.0.1:${metricsPort}/metrics`, { agent: false }, res => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject),
  );
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^rauta_tracing_spans_total\{result="(\w+)"\} (\d+)/gm))
    out[m[1]!] = Number(m[2]);
  const q = /^rauta_tracing_queue_spans (\d+)/m.exec(text);
  out.queued = q ? Number(q[1]) : 0;
  return out;
}

async function main() {
  ensureTools();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-bench-tracing-"));
  const up = await freePort();
  const upstream = await startNginxUpstream(tmp, up);
  const collector = await startOtelCollector();
  // nothing listens there: every export fails at once, as with a collector that went away
  const deadEndpoint = `http://127.0.0.1:${await freePort()}`;
  const yaml = (port: number) => gatewayYaml(port, up);
  const targets: ServeTarget[] = [
    await serveTarget(tmp, OFF, yaml),
    await serveTarget(tmp, ONE, yaml, [
      "--tracing-endpoint",
      collector.endpoint,
      "--tracing-sample-ratio",
      "0.01",
    ]),
    await serveTarget(tmp, ALL, yaml, ["--tracing-endpoint", collector.endpoint]),
    await serveTarget(tmp, DEAD, yaml, ["--tracing-endpoint", deadEndpoint]),
  ];
  const fates = new Map<string, Record<string, number>>();
  let measuredRounds: Rounds;
  try {
    measuredRounds = await runRounds(targets, ROUNDS, async t => {
      fates.set(t.name, await tracingCounters(t.metricsPort));
      return `spans ${JSON.stringify(fates.get(t.name))}`;
    });
  } finally {
    await kill(upstream);
    await collector.stop();
  }
  const { best, rps: rounds } = measuredRounds;
  const base = best.get(OFF)!;
  const ratio = (name: string, to = base) => best.get(name)!.rps / to.rps;
  const cpuRatio = (name: string) => best.get(name)!.cpuUsPerReq / base.cpuUsPerReq;
  const judge = (ok: boolean) => (ok ? "met" : "NOT met");
  const one = ratio(ONE);
  const all = ratio(ALL);
  const dead = ratio(DEAD, best.get(ALL)!);
  const deadFates = fates.get(DEAD) ?? {};
  const text = [
    "<!-- tracing-bench:start -->",
    "## Tracing",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (${os.cpus().length} cores, shared; Node ${process.version}) with`,
    `\`BENCH_DURATION=${DURATION} BENCH_ROUNDS=${ROUNDS} npm run bench:tracing\` (hack/bench/tracing.ts). Upstream: nginx \`return 200\`, 100-byte body.`,
    `Every target is \`rauta serve --workers 1\` on the same Gateway API YAML with the \`--tracing-*\` flags (or none), \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`; best of ${ROUNDS} interleaved rounds; CPU and RSS are the serving worker's. Spans go over OTLP/HTTP to a real OpenTelemetry Collector (otlp receiver, file exporter) on loopback; "collector stopped" exports to a port nothing listens on.`,
    "",
    "| target | rps | p50 | p99 | CPU/req | peak RSS | ÷ off | CPU ÷ off |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...targets.map(t => {
      const r = best.get(t.name)!;
      return `| ${t.name} | ${Math.round(r.rps).toLocaleString("en-US")} | ${r.p50} | ${r.p99} | ${r.cpuUsPerReq.toFixed(1)} µs | ${r.peakMb.toFixed(0)} MB | ${ratio(t.name).toFixed(2)}× | ${cpuRatio(t.name).toFixed(2)}× |`;
    }),
    "",
    `- 1 % sampling: ${one.toFixed(2)}× the rps untraced (target ≥ 0.9×) — ${judge(one >= 0.9)}`,
    `- 100 % sampling: ${all.toFixed(2)}× (target ≥ 0.7×) — ${judge(all >= 0.7)}`,
    `- collector stopped, 100 % sampling: ${dead.toFixed(2)}× the rps with the collector up (target ≥ 0.95×) — ${judge(dead >= 0.95)}; its last round's spans: ${deadFates.dropped ?? 0} dropped, ${deadFates.export_failed ?? 0} failed exports, ${deadFates.queued ?? 0} queued at the end (the queue is bounded at 2048)`,
    "",
    roundsLine(targets, rounds),
    "<!-- tracing-bench:end -->",
  ].join("\n");
  console.log(text);
  if (write) {
    writeBenchmarkSection("tracing-bench", text);
    console.error("bench: wrote docs/benchmarks.md");
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
