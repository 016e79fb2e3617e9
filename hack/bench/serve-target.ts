// A `rauta serve --workers 1` process on a directory of Gateway API YAML, as the plugin and
// policy benchmarks run it, and the nginx upstream (`return 200`, 100-byte body) they share.
import { execFile, execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import {
  CONNECTIONS,
  childrenOf,
  cmdline,
  kill,
  measured,
  peakRssKb,
  proc,
  runWrk,
  runWrkAsync,
  TICKS_PER_SECOND,
  ticksOf,
  waitPort,
} from "./lib.ts";
import type { Result } from "./lib.ts";

export interface ServeTarget {
  name: string;
  url: string;
  headers: string[];
  dir: string;
  metricsPort: number;
  p: ChildProcess | null;
  /** more `rauta serve` flags */
  args?: string[];
}

/** Starts the target and waits until its config (and plugins) is served (/readyz). */
export async function startServe(t: ServeTarget): Promise<void> {
  t.p = proc(
    process.execPath,
    [
      "proxy/bin/rauta.ts",
      "serve",
      "-f",
      t.dir,
      "--workers",
      "1",
      "--metrics-port",
      String(t.metricsPort),
      "--address",
      "127.0.0.1",
      "--no-watch",
      ...(t.args ?? []),
    ],
    t.name,
    { RAUTA_LOG_LEVEL: "error" },
  );
  await waitPort(Number(new URL(t.url).port), 120_000);
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>(r =>
      http
        .get(
          `http://127.0.0.1:${t.metricsPort}/readyz`,
          // a fresh connection: a kept-alive one may be closed by the server as it is reused
          { agent: false },
          res => (res.resume(), r(res.statusCode === 200)),
        )
        .on("error", () => r(false)),
    );
    if (ok) return;
    await new Promise(r => setTimeout(r, 200));
  }
  throw new Error(`${t.name} never became ready`);
}

/** the serving worker (not the primary, not an esbuild service it may still be stopping) */
export const serveWorkerOf = (t: ServeTarget) =>
  childrenOf(t.p!.pid!).filter(pid => cmdline(pid).includes("serve-worker"));

/** nginx answering 200 with a 100-byte body on 127.0.0.1:port, one worker. */
export async function startNginxUpstream(dir: string, port: number): Promise<ChildProcess> {
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "${"x".repeat(100)}"; } } }
`,
  );
  const upstream = proc("nginx", ["-c", conf, "-p", dir], "upstream");
  await waitPort(port);
  return upstream;
}

/** GatewayClass rauta and Gateway "bench" with one HTTP listener on `port`. */
export function benchGatewayYaml(port: number): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: rauta }
spec: { controllerName: rauta.io/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: bench, namespace: default }
spec:
  gatewayClassName: rauta
  listeners: [{ name: http, protocol: HTTP, port: ${port} }]`;
}

/** Service "up" (port 80) and its EndpointSlice: the nginx upstream on 127.0.0.1:port. */
export function upstreamYaml(port: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: up, namespace: default }
spec: { ports: [{ name: http, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: up, namespace: default, labels: { kubernetes.io/service-name: up } }
addressType: IPv4
ports: [{ name: http, port: ${port}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]`;
}

/** A serve target in `dir`/<name> on `yaml(port)`, its listener's URL at `path`. */
export async function serveTarget(
  root: string,
  name: string,
  yaml: (port: number) => string,
  args: string[] = [],
  urlPath = "/x",
): Promise<ServeTarget> {
  const port = await freePort();
  const dir = path.join(root, name.replace(/\W+/g, "-"));
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "gateway.yaml"), yaml(port));
  return {
    name,
    url: `http://127.0.0.1:${port}${urlPath}`,
    headers: [],
    dir,
    metricsPort: await freePort(),
    p: null,
    args,
  };
}

export interface Rounds {
  /** each target's best round (by rps), with the highest peak RSS seen */
  best: Map<string, Result & { peakMb: number }>;
  /** each target's rps, round by round */
  rps: Map<string, number[]>;
}

/**
 * Interleaved rounds: each round starts every target in turn (a round starting with another
 * target than the last, so the shared machine's slow spells fall on all of them alike), warms it
 * up for a second, loads it, and stops it. `after` sees each target while it still runs.
 */
export async function runRounds(
  targets: ServeTarget[],
  rounds: number,
  after: (t: ServeTarget, r: Result) => Promise<string> = async () => "",
): Promise<Rounds> {
  const best = new Map<string, Result & { peakMb: number }>();
  const rps = new Map<string, number[]>();
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
      for (const t of order) {
        await startServe(t);
        execFileSync("wrk", ["-t1", `-c${CONNECTIONS}`, "-d1s", t.url], { stdio: "ignore" });
        const pids = serveWorkerOf(t);
        const r = measured(pids, () => runWrk(t.url, t.headers));
        const peakMb = pids.reduce((n, pid) => n + peakRssKb(pid), 0) / 1024;
        const extra = await after(t, r);
        console.error(
          `round ${round} ${t.name}: ${Math.round(r.rps)} rps p99 ${r.p99} cpu ${r.cpuUsPerReq.toFixed(1)} us/req${extra ? ` ${extra}` : ""}`,
        );
        (rps.get(t.name) ?? rps.set(t.name, []).get(t.name)!).push(r.rps);
        const prev = best.get(t.name);
        if (!prev || r.rps > prev.rps)
          best.set(t.name, { ...r, peakMb: Math.max(peakMb, prev?.peakMb ?? 0) });
        await kill(t.p);
      }
    }
  } finally {
    for (const t of targets) await kill(t.p);
  }
  return { best, rps };
}

/** "Every round, rps: a 21.8k, 21.5k; b …." for the report. */
export function roundsLine(targets: ServeTarget[], rps: Map<string, number[]>): string {
  return `Every round, rps: ${targets
    .map(
      t =>
        `${t.name} ${rps
          .get(t.name)
          ?.map(x => `${(x / 1000).toFixed(1)}k`)
          .join(", ")}`,
    )
    .join("; ")}.`;
}

export interface PairResult {
  rps: [number, number];
  cpuUsPerReq: [number, number];
}

/**
 * Two targets loaded at the same time, each by its own wrk: whatever else the shared machine
 * does in that window slows both alike, so their ratio holds where back-to-back runs drift.
 */
export async function runPair(
  a: ServeTarget,
  b: ServeTarget,
  /** sees both targets after the load, while they still run */
  after: () => Promise<void> = async () => {},
): Promise<PairResult> {
  await Promise.all([startServe(a), startServe(b)]);
  try {
    await Promise.all([runWrkWarmup(a), runWrkWarmup(b)]);
    const pids = [serveWorkerOf(a), serveWorkerOf(b)] as const;
    const before = [ticksOf(pids[0]), ticksOf(pids[1])];
    const [ra, rb] = await Promise.all([
      runWrkAsync(a.url, a.headers),
      runWrkAsync(b.url, b.headers),
    ]);
    const cpu = (i: 0 | 1, requests: number) =>
      requests ? ((ticksOf(pids[i]) - before[i]!) / TICKS_PER_SECOND / requests) * 1e6 : NaN;
    const out: PairResult = {
      rps: [ra.rps, rb.rps],
      cpuUsPerReq: [cpu(0, ra.requests), cpu(1, rb.requests)],
    };
    await after();
    return out;
  } finally {
    await Promise.all([kill(a.p), kill(b.p)]);
  }
}

function runWrkWarmup(t: ServeTarget): Promise<unknown> {
  return new Promise(resolve =>
    execFile("wrk", ["-t1", `-c${CONNECTIONS}`, "-d1s", t.url], () => resolve(null)),
  );
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
