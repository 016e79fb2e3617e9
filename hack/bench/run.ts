// Data-plane benchmark (`npm run bench`): one upstream (nginx `return 200`, 100-byte body) and,
// in one run, rps / p50 / p99 / RSS through: direct, nginx, haproxy, the tuned bare Node proxy
// (hack/bench/floor.ts) and RAUTA (`rauta serve`) with 1 route and with 1,000 routes (hitting
// the last one), over HTTP/1.1 (wrk) and h2 (h2load, h2c prior knowledge). Every proxy runs with
// one worker. Rounds are interleaved and the best round per target is reported (the machine is
// shared, so interference only ever slows a round down). Writes the table to
// docs/benchmarks.md between the data-plane markers.
//
//   npm run bench                         BENCH_DURATION=5 BENCH_ROUNDS=2 by default
//   npm run bench -- --no-write
import { execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import {
  CONNECTIONS,
  DURATION,
  ROOT,
  childrenOf,
  cmdline,
  ensureTools,
  kill,
  measured,
  peakRssKb,
  proc,
  runH2load,
  runWrk,
  waitPort,
  writeBenchmarkSection,
} from "./lib.ts";
import type { Result } from "./lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const NODE = process.execPath;
const BODY = "x".repeat(100);
const write = !process.argv.includes("--no-write");

interface Target {
  name: string;
  h1: string | null;
  h2: string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** pids whose RSS is reported (the serving worker) */
  servingPids(): number[];
  extraHeaders?: string[];
}

function gatewayYaml(port: number, routes: number, upstreamPort: number): string {
  const docs: string[] = [
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: rauta }
spec: { controllerName: rauta.io/gateway-controller }`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: bench, namespace: default }
spec:
  gatewayClassName: rauta
  listeners:
    - { name: http, protocol: HTTP, port: ${port} }`,
  ];
  for (let i = 0; i < routes; i++) {
    const pathValue = routes === 1 ? "/" : `/svc${i}`;
    docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: route-${i}, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: ${pathValue} } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: { set: [{ name: X-Bench, value: "1" }] }
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: X-Served-By, value: rauta }] }
      backendRefs: [{ name: upstream-${i}, port: 80 }]`);
    docs.push(`apiVersion: v1
kind: Service
metadata: { name: upstream-${i}, namespace: default }
spec: { ports: [{ name: http, port: 80 }] }`);
    docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: upstream-${i}, namespace: default, labels: { kubernetes.io/service-name: upstream-${i} } }
addressType: IPv4
ports: [{ name: http, port: ${upstreamPort}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]`);
  }
  return `${docs.join("\n---\n")}\n`;
}

async function main() {
  ensureTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-bench-"));
  const up = await freePort();
  const upH2 = await freePort();
  const upstreamConf = path.join(dir, "upstream.conf");
  fs.writeFileSync(
    upstreamConf,
    `worker_processes 1; daemon off; pid ${dir}/upstream.pid; error_log ${dir}/upstream.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${up}; listen 127.0.0.1:${upH2} http2;
    location / { default_type text/plain; return 200 "${BODY}"; } } }
`,
  );
  const upstream = proc("nginx", ["-c", upstreamConf, "-p", dir], "upstream nginx");
  await waitPort(up);

  const mk = (
    name: string,
    h1Port: number | null,
    h2Port: number | null,
    start: () => ChildProcess | null,
    pids: (p: ChildProcess) => number[],
    path = "/",
  ): Target => {
    let p: ChildProcess | null = null;
    return {
      name,
      h1: h1Port ? `http://127.0.0.1:${h1Port}${path}` : null,
      h2: h2Port ? `http://127.0.0.1:${h2Port}${path}` : null,
      async start() {
        p = start();
        if (h1Port) await waitPort(h1Port, 120_000);
        if (h2Port && h2Port !== h1Port) await waitPort(h2Port, 120_000);
      },
      async stop() {
        await kill(p);
        p = null;
      },
      servingPids: () => (p ? pids(p) : []),
    };
  };

  const targets: Target[] = [];
  targets.push({
    ...mk(
      "direct (upstream nginx)",
      null,
      null,
      () => null,
      () => [],
    ),
    h1: `http://127.0.0.1:${up}/`,
    h2: `http://127.0.0.1:${upH2}/`,
    servingPids: () => childrenOf(upstream.pid!),
  });

  const nginxH1 = await freePort();
  const nginxH2 = await freePort();
  const nginxConf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    nginxConf,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  upstream up { server 127.0.0.1:${up}; keepalive 128; }
  server { listen 127.0.0.1:${nginxH1}; listen 127.0.0.1:${nginxH2} http2;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
`,
  );
  targets.push(
    mk(
      "nginx",
      nginxH1,
      nginxH2,
      () => proc("nginx", ["-c", nginxConf, "-p", dir], "nginx"),
      p => childrenOf(p.pid!),
    ),
  );

  const haH1 = await freePort();
  const haH2 = await freePort();
  const haConf = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(
    haConf,
    `global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:${haH1}
  bind 127.0.0.1:${haH2} proto h2
  default_backend be
backend be
  server up 127.0.0.1:${up}
`,
  );
  targets.push(
    mk(
      "haproxy",
      haH1,
      haH2,
      () => proc("haproxy", ["-f", haConf], "haproxy"),
      p => [p.pid!],
    ),
  );

  const floorPort = await freePort();
  targets.push(
    mk(
      "node floor (node:http + undici Pool.stream)",
      floorPort,
      null,
      () => proc(NODE, ["hack/bench/floor.ts", String(floorPort), String(up)], "floor"),
      p => [p.pid!],
    ),
  );

  for (const routes of [1, 1000]) {
    const port = await freePort();
    const metrics = await freePort();
    const rdir = path.join(dir, `rauta-${routes}`);
    fs.mkdirSync(rdir);
    fs.writeFileSync(path.join(rdir, "gateway.yaml"), gatewayYaml(port, routes, up));
    targets.push(
      mk(
        `RAUTA, ${routes === 1 ? "1 route" : "1,000 routes (last one)"}`,
        port,
        port,
        () =>
          proc(
            NODE,
            [
              "proxy/bin/rauta.ts",
              "serve",
              "-f",
              rdir,
              "--workers",
              "1",
              "--metrics-port",
              String(metrics),
              "--address",
              "127.0.0.1",
              "--no-watch",
            ],
            `rauta-${routes}`,
            {
              RAUTA_LOG_LEVEL: "warn",
            },
          ),
        // the workers only (not an esbuild service the primary may still be stopping)
        p => childrenOf(p.pid!).filter(pid => cmdline(pid).includes("serve-worker")),
        routes === 1 ? "/" : `/svc${routes - 1}/x`,
      ),
    );
  }

  // BENCH_ONLY=<substring>[|<substring>…] runs a subset (for iterating; the published table runs
  // everything). "|", since target names contain commas ("RAUTA, 1,000 routes").
  const only = process.env.BENCH_ONLY?.split("|");
  if (only)
    targets.splice(0, targets.length, ...targets.filter(t => only.some(o => t.name.includes(o))));
  const best = new Map<string, { h1?: Result; h2?: Result }>();
  const allRounds = new Map<
    string,
    { h1: number[]; h2: number[]; rss: number[]; peak: number[]; cpu: number[] }
  >();
  const roundsOf = (name: string) => {
    let rounds = allRounds.get(name);
    if (!rounds) allRounds.set(name, (rounds = { h1: [], h2: [], rss: [], peak: [], cpu: [] }));
    return rounds;
  };
  const load = os
    .loadavg()
    .map(x => x.toFixed(2))
    .join(", ");
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        await t.start();
        const entry = best.get(t.name) ?? {};
        if (t.h1) {
          execFileSync("wrk", ["-t1", `-c${CONNECTIONS}`, "-d1s", t.h1], { stdio: "ignore" }); // warm-up
          const r = measured(t.servingPids(), () => runWrk(t.h1!, t.extraHeaders));
          console.error(
            `round ${round} ${t.name} h1: ${Math.round(r.rps)} rps p50 ${r.p50} p99 ${r.p99} rss ${r.rssMb.toFixed(0)} MB cpu ${r.cpuUsPerReq.toFixed(1)} us/req`,
          );
          if (!entry.h1 || r.rps > entry.h1.rps) entry.h1 = r;
          const all = roundsOf(t.name);
          all.h1.push(r.rps);
          if (Number.isFinite(r.cpuUsPerReq)) all.cpu.push(r.cpuUsPerReq);
          if (r.rssMb) all.rss.push(r.rssMb);
        }
        if (t.h2) {
          const r = measured(t.servingPids(), () => runH2load(t.h2!, t.extraHeaders));
          console.error(
            `round ${round} ${t.name} h2: ${Math.round(r.rps)} rps mean ${r.p50} max ${r.p99} cpu ${r.cpuUsPerReq.toFixed(1)} us/req`,
          );
          if (!entry.h2 || r.rps > entry.h2.rps) entry.h2 = r;
          roundsOf(t.name).h2.push(r.rps);
        }
        // after both loads: the highest RSS the serving processes reached in this round
        const peak = t.servingPids().reduce((s, p) => s + peakRssKb(p), 0) / 1024;
        if (peak) roundsOf(t.name).peak.push(peak);
        best.set(t.name, entry);
        await t.stop();
      }
    }
  } finally {
    for (const t of targets) await t.stop();
    await kill(upstream);
  }

  const get = (prefix: string) => [...best.entries()].find(([k]) => k.startsWith(prefix))?.[1];
  const nginx = get("nginx");
  const floor = get("node floor");
  const r1 = get("RAUTA, 1 route");
  const r1000 = get("RAUTA, 1,000");
  const ratio = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
  const us = (r?: Result) =>
    r && Number.isFinite(r.cpuUsPerReq) ? `${r.cpuUsPerReq.toFixed(1)} µs` : "–";
  /** the highest peak RSS over every round: the memory a worker actually needs */
  const maxPeak = (name: string) => Math.max(0, ...(allRounds.get(name)?.peak ?? []));
  const rows = [...best.entries()].map(([name, r]) => {
    const h1 = r.h1;
    const h2 = r.h2;
    const n = (x?: number) => (x ? Math.round(x).toLocaleString("en-US") : "–");
    const peak = maxPeak(name);
    return `| ${name} | ${n(h1?.rps)} | ${h1?.p50 ?? "–"} | ${h1?.p99 ?? "–"} | ${us(h1)} | ${h1 && h1.rssMb ? `${h1.rssMb.toFixed(0)} MB (${h1.privateMb.toFixed(0)})` : "–"} | ${peak ? `${peak.toFixed(0)} MB` : "–"} | ${ratio(h1?.rps, nginx?.h1?.rps)} | ${ratio(h1?.rps, floor?.h1?.rps)} | ${n(h2?.rps)} | ${h2?.p50 ?? "–"} | ${us(h2)} | ${ratio(h2?.rps, nginx?.h2?.rps)} |`;
  });
  const cpu = (os.cpus()[0]?.model ?? "?").replace(/\s+/g, " ");
  const check = (ok: boolean | undefined) => (ok === undefined ? "n/a" : ok ? "met" : "NOT met");
  const cpuMin = (name: string) => {
    const a = allRounds.get(name)?.cpu ?? [];
    return a.length ? Math.min(...a) : NaN;
  };
  const floorName = [...best.keys()].find(k => k.startsWith("node floor")) ?? "";
  const r1Name = [...best.keys()].find(k => k.startsWith("RAUTA, 1 route")) ?? "";
  const nginxName = "nginx";
  const r1000Peak = maxPeak([...best.keys()].find(k => k.startsWith("RAUTA, 1,000")) ?? "");
  const targetsText = [
    `- CPU per request (lowest of the rounds; does not depend on how busy the machine was): RAUTA ${cpuMin(r1Name).toFixed(1)} µs, floor ${cpuMin(floorName).toFixed(1)} µs, nginx ${cpuMin(nginxName).toFixed(1)} µs — RAUTA costs ${(cpuMin(r1Name) / cpuMin(floorName)).toFixed(2)}× the floor's CPU per request and ${(cpuMin(r1Name) / cpuMin(nginxName)).toFixed(2)}× nginx's (the issue's targets, as CPU efficiency: ≤ ${(1 / 0.9).toFixed(2)}× the floor, ≤ ${(1 / 0.3).toFixed(1)}× nginx)`,
    `- RAUTA (1 route, filters and metrics on) vs the tuned floor: ${ratio(r1?.h1?.rps, floor?.h1?.rps)} (target ≥ 0.90×) — ${check(r1?.h1 && floor?.h1 ? r1.h1.rps >= 0.9 * floor.h1.rps : undefined)}`,
    `- RAUTA vs nginx, HTTP/1.1: ${ratio(r1?.h1?.rps, nginx?.h1?.rps)} (target ≥ 0.30×, stretch ≥ 0.45×) — ${check(r1?.h1 && nginx?.h1 ? r1.h1.rps >= 0.3 * nginx.h1.rps : undefined)}`,
    `- p99 vs nginx's: ${ratio(r1?.h1?.p99ms, nginx?.h1?.p99ms)} with 1 route, ${ratio(r1000?.h1?.p99ms, nginx?.h1?.p99ms)} with 1,000 (target ≤ 4×, both) — ${check(r1?.h1 && r1000?.h1 && nginx?.h1 ? Math.max(r1.h1.p99ms, r1000.h1.p99ms) <= 4 * nginx.h1.p99ms : undefined)}`,
    `- 1,000 routes vs 1 route: ${ratio(r1000?.h1?.rps, r1?.h1?.rps)} (target ≥ 0.90×) — ${check(r1000?.h1 && r1?.h1 ? r1000.h1.rps >= 0.9 * r1.h1.rps : undefined)}`,
    `- RSS of the worker at 1,000 routes: peak ${r1000Peak ? `${r1000Peak.toFixed(0)} MB over every round's HTTP/1.1 and h2 loads` : "–"}; ${r1000?.h1 ? `${r1000.h1.rssMb.toFixed(0)} MB after the best HTTP/1.1 run, of which ${r1000.h1.privateMb.toFixed(0)} MB private (the rest is the node binary's shared pages)` : "–"} (target < 150 MB, judged on the peak) — ${check(r1000Peak ? r1000Peak < 150 : undefined)}`,
  ];
  const section = [
    "<!-- dataplane-bench:start -->",
    "## Data plane",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (${os.availableParallelism()} cores, ${cpu}, shared with other work; Node ${process.version}) with`,
    `\`BENCH_DURATION=${DURATION} BENCH_ROUNDS=${ROUNDS} npm run bench\` (hack/bench/run.ts). Upstream: nginx \`return 200\` with a 100-byte body, 1 worker.`,
    `Every proxy runs 1 worker (nginx \`worker_processes 1\`, haproxy \`nbthread 1\`, one Node process, \`rauta serve --workers 1\`).`,
    `RAUTA's worker runs with the V8 heap settings of proxy/runtime/v8-flags.ts${process.env.RAUTA_V8_FLAGS !== undefined ? ` replaced by RAUTA_V8_FLAGS="${process.env.RAUTA_V8_FLAGS}"` : ""}; the floor with V8's defaults.`,
    `HTTP/1.1: \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`; h2 (h2c prior knowledge): \`h2load -c 10 -m 10 -D ${DURATION}\` (h2load reports mean/max, not percentiles).`,
    `Best of ${ROUNDS} interleaved rounds per target. RAUTA runs with routing, a request and a response header filter, and metrics on; 1,000 routes = 1,000 HTTPRoutes`,
    "(distinct path prefixes, a Service each) and the request hits the last one. RSS: the serving process(es) after the HTTP/1.1 run (RAUTA: the worker, not the primary),",
    "in parentheses the private (anonymous) part; peak RSS: the kernel's high-water mark (VmHWM) after the HTTP/1.1 and h2 loads, the highest over all rounds.",
    "",
    "| target | h1 rps | p50 | p99 | CPU/req | RSS (private) | peak RSS | ÷ nginx | ÷ floor | h2 rps | h2 mean latency | h2 CPU/req | h2 ÷ nginx |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    ...targetsText,
    "",
    `Every round (the machine is shared: load average ${load} when the run started), h1 rps / h2 rps / RSS after h1 / peak RSS / h1 CPU per request:`,
    "",
    ...[...allRounds.entries()].map(
      ([name, a]) =>
        `- ${name}: ${a.h1.map(x => Math.round(x / 100) / 10 + "k").join(", ") || "–"} / ${a.h2.map(x => Math.round(x / 100) / 10 + "k").join(", ") || "–"}${a.rss.length ? ` / ${a.rss.map(x => x.toFixed(0)).join(", ")} MB` : ""}${a.peak.length ? ` / ${a.peak.map(x => x.toFixed(0)).join(", ")} MB` : ""}${a.cpu.length ? ` / ${a.cpu.map(x => x.toFixed(1)).join(", ")} µs` : ""}`,
    ),
    "<!-- dataplane-bench:end -->",
  ].join("\n");
  console.log(section);
  if (write) {
    const file = writeBenchmarkSection("dataplane-bench", section);
    console.error(`bench: wrote ${path.relative(ROOT, file)}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
