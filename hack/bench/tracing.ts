// Tracing benchmark (`npm run bench:tracing`): what OpenTelemetry tracing costs on the request
// path, measured in pairs. Each target is `rauta serve --workers 1` on the same Gateway API YAML
// in front of one nginx upstream (`return 200`); spans go to a real OpenTelemetry Collector
// (built from Go modules, test/helpers/otel-collector.ts; file exporter). A pair's two targets
// run at the same time, each under its own `wrk -t1 -c50`, so the shared machine's slow spells
// (which move back-to-back runs of one target by up to 40 % here) slow both alike; the ratio of
// their rps is the cost. Pairs, each repeated BENCH_ROUNDS times, the median ratio judged:
//   - 1 % of new traces sampled   vs tracing off    (target ≥ 0.9×)
//   - 100 % sampled               vs tracing off    (target ≥ 0.7×)
//   - 100 %, the collector gone   vs 100 %, collector up (target ≥ 0.95×: a dead collector costs
//     nothing beyond the spans themselves; they are dropped, not queued)
// Writes docs/benchmarks.md between the tracing-bench markers.
//   npm run bench:tracing                BENCH_DURATION=5 BENCH_ROUNDS=5 by default
//   npm run bench:tracing -- --no-write
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import { startOtelCollector, tracingCounters } from "../../test/helpers/otel-collector.ts";
import { CONNECTIONS, DURATION, ensureTools, kill, writeBenchmarkSection } from "./lib.ts";
import {
  benchGatewayYaml,
  median,
  runPair,
  serveTarget,
  startNginxUpstream,
  upstreamYaml,
} from "./serve-target.ts";
import type { PairResult } from "./serve-target.ts";

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

interface Pair {
  name: string;
  reference: string;
  target: string;
  goal: number;
  args: [string[], string[]];
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
  const one = ["--tracing-endpoint", collector.endpoint, "--tracing-sample-ratio", "0.01"];
  const all = ["--tracing-endpoint", collector.endpoint];
  const dead = ["--tracing-endpoint", deadEndpoint];
  const pairs: Pair[] = [
    { name: "1 % sampled vs off", reference: OFF, target: ONE, goal: 0.9, args: [[], one] },
    { name: "100 % sampled vs off", reference: OFF, target: ALL, goal: 0.7, args: [[], all] },
    {
      name: "collector stopped vs up (100 %)",
      reference: ALL,
      target: DEAD,
      goal: 0.95,
      args: [all, dead],
    },
  ];
  const runs = new Map<string, PairResult[]>();
  const fates = new Map<string, Record<string, number>>();
  try {
    for (let round = 1; round <= ROUNDS; round++)
      for (const [i, pair] of pairs.entries()) {
        const a = await serveTarget(tmp, `r${round}-p${i}-a`, yaml, pair.args[0]);
        const b = await serveTarget(tmp, `r${round}-p${i}-b`, yaml, pair.args[1]);
        let counters: Record<string, number> = {};
        const r = await runPair(a, b, async () => {
          counters = await tracingCounters(b.metricsPort);
        });
        fates.set(pair.name, counters);
        (runs.get(pair.name) ?? runs.set(pair.name, []).get(pair.name)!).push(r);
        console.error(
          `round ${round} ${pair.name}: ${Math.round(r.rps[1])} / ${Math.round(r.rps[0])} rps = ${(r.rps[1] / r.rps[0]).toFixed(2)}× (cpu ${r.cpuUsPerReq[1].toFixed(1)} / ${r.cpuUsPerReq[0].toFixed(1)} us/req) spans ${JSON.stringify(counters)}`,
        );
      }
  } finally {
    await kill(upstream);
    await collector.stop();
  }
  const judge = (ok: boolean) => (ok ? "met" : "NOT met");
  const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
  const rows = pairs.map(pair => {
    const rs = runs.get(pair.name)!;
    const ratios = rs.map(r => r.rps[1] / r.rps[0]);
    return {
      pair,
      ratios,
      ratio: median(ratios),
      rpsA: median(rs.map(r => r.rps[0])),
      rpsB: median(rs.map(r => r.rps[1])),
      cpuA: median(rs.map(r => r.cpuUsPerReq[0])),
      cpuB: median(rs.map(r => r.cpuUsPerReq[1])),
    };
  });
  const deadFates = fates.get(pairs[2]!.name) ?? {};
  const text = [
    "<!-- tracing-bench:start -->",
    "## Tracing",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (${os.cpus().length} cores, shared; Node ${process.version}) with`,
    `\`BENCH_DURATION=${DURATION} BENCH_ROUNDS=${ROUNDS} npm run bench:tracing\` (hack/bench/tracing.ts). Upstream: nginx \`return 200\`, 100-byte body.`,
    `Every target is \`rauta serve --workers 1\` on the same Gateway API YAML with the \`--tracing-*\` flags (or none). The two targets of a pair run **at the same time**, each under its own \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s\`, so both see the same machine (back-to-back runs of one target drift by up to 40 % here); ${ROUNDS} rounds, medians. Spans go over OTLP/HTTP to a real OpenTelemetry Collector (otlp receiver, file exporter) on loopback, which shares the two cores; "collector stopped" exports to a port nothing listens on. CPU is the serving worker's per request.`,
    "",
    "| pair (target vs reference) | target rps | reference rps | ratio (median) | every round | CPU/req target | CPU/req reference |",
    "|---|---:|---:|---:|---|---:|---:|",
    ...rows.map(
      r =>
        `| ${r.pair.target} vs ${r.pair.reference} | ${Math.round(r.rpsB).toLocaleString("en-US")} | ${Math.round(r.rpsA).toLocaleString("en-US")} | ${r.ratio.toFixed(2)}× | ${r.ratios.map(x => x.toFixed(2)).join(", ")} | ${r.cpuB.toFixed(1)} µs | ${r.cpuA.toFixed(1)} µs |`,
    ),
    "",
    ...rows.map(
      r =>
        `- ${r.pair.name}: ${r.ratio.toFixed(2)}× (target ≥ ${r.pair.goal}×) — ${judge(r.ratio >= r.pair.goal)}`,
    ),
    `- the stopped collector's last round: ${deadFates.dropped ?? 0} spans dropped, ${deadFates.export_failed ?? 0} in failed exports, ${deadFates.queued ?? 0} queued at the end (the queue is bounded at 2048)`,
    "",
    `Rounds' rps (target / reference): ${rows
      .map(
        r =>
          `${r.pair.name} ${runs
            .get(r.pair.name)!
            .map(x => `${k(x.rps[1])}/${k(x.rps[0])}`)
            .join(", ")}`,
      )
      .join("; ")}.`,
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
