// Chaos scenarios: clients → RAUTA (`rauta serve --workers 1`, a child process) → toxiproxy (one
// proxy per endpoint) → three Node backends, under steady closed-loop load on two routes with the
// same timeouts (request 2 s, backendRequest 500 ms), one with retries (attempts 2, backoff 20 ms)
// and one without. Each scenario gets fresh endpoints (new toxiproxy ports in the EndpointSlices,
// hot-swapped through the watched YAML file, so no outlier ejection or breaker state carries
// over), injects one fault, heals it and waits (bounded) for the recovery. Measured per scenario:
// what clients saw (status mix) on each route, the slowest request against the route timeout,
// the time to recover, and the worker's RSS and sockets, idle, before and after.
//
//   npm run chaos                    runs every scenario, prints the table (~3 minutes)
//   npm run chaos -- --write         … and writes it to docs/reliability.md, section "Chaos"
//   CHAOS_ONLY=blackhole,vanish npm run chaos     a subset (by id)
//   npm run chaos -- --from /tmp/rauta-chaos-report.json --write   re-render a saved run (every run
//                                    saves its figures there)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import { startToxiproxy } from "./toxiproxy.ts";
import type { RunningToxiproxy, Toxic } from "./toxiproxy.ts";
import {
  fdsOf,
  gatewayYaml,
  log,
  metricValue,
  rssMb,
  sleep,
  startBackend,
  startRauta,
  stopOnSignals,
  writeAtomic,
  writeReliabilitySection,
} from "./harness.ts";
import type { Backend, Rauta, RouteSpec } from "./harness.ts";
import { Load, formatMix, statusMix } from "./load.ts";
import type { Result } from "./load.ts";

export const REQUEST_TIMEOUT_MS = 2000;
export const BACKEND_TIMEOUT_MS = 500;
const ROUTES: RouteSpec[] = [
  {
    name: "retry",
    prefix: "/r",
    timeouts: { request: `${REQUEST_TIMEOUT_MS}ms`, backendRequest: `${BACKEND_TIMEOUT_MS}ms` },
    retry: { attempts: 2, backoff: "20ms" },
  },
  {
    name: "plain",
    prefix: "/n",
    timeouts: { request: `${REQUEST_TIMEOUT_MS}ms`, backendRequest: `${BACKEND_TIMEOUT_MS}ms` },
  },
];
/** concurrent request loops per route */
export const CONCURRENCY = { retry: 8, plain: 4 };
const DEFAULT_PATH = "/echo?size=1024";
const PRE_MS = 1500;
const POST_MS = 1500;
/** a route is recovered once this long passed without a failure on either route */
const QUIET_MS = 1000;

export interface Endpoint {
  name: string;
  proxy: string;
  port: number;
  backend: Backend;
}

export interface Env {
  toxi: RunningToxiproxy;
  rauta: Rauta;
  backends: Backend[];
  endpoints: Endpoint[];
  /** the config generation the worker serves (as last seen) */
  generation: number;
}

export interface Scenario {
  id: string;
  title: string;
  /** what is injected, in words */
  fault: string;
  /** request path after the route prefix */
  path?: string;
  chaosMs: number;
  inject(env: Env): Promise<void>;
  heal(env: Env): Promise<void>;
  /** how long the suite waits, after healing, for QUIET_MS without failures */
  recoverWithinMs: number;
  /** after healing, also wait until this backend serves again (it was unreachable) */
  waitBackend?: string;
  expect: {
    /** least share of 2xx on the retry route while the fault lasts */
    retryOkMin: number;
    /**
     * statuses/outcomes the route without retries must show at least once (the fault bit);
     * "502|503": either
     */
    plainShows?: string[];
    /**
     * upstream error kinds RAUTA must count at least once ("connect|reset": either), for a fault
     * whose cost to clients is too small to count on (what was in flight at one instant)
     */
    upstreamShows?: string[];
  };
}

/** The scenarios, in the order they run. Faults hit endpoint "a" unless said otherwise. */
export function scenarios(): Scenario[] {
  const onA = (t: Toxic) => async (env: Env) => {
    await env.toxi.client.addToxic(env.endpoints[0]!.proxy, t);
  };
  const removeAll = async (env: Env) => {
    for (const e of env.endpoints) {
      const info = (await env.toxi.client.proxies())[e.proxy];
      for (const t of info?.toxics ?? []) await env.toxi.client.removeToxic(e.proxy, t.name);
    }
  };
  return [
    {
      id: "latency-below",
      title: "added latency below the timeout",
      fault: "latency 150 ms ± 20 ms on a's responses",
      chaosMs: 4000,
      inject: onA({ type: "latency", attributes: { latency: 150, jitter: 20 } }),
      heal: removeAll,
      recoverWithinMs: 3000,
      expect: { retryOkMin: 1 },
    },
    {
      id: "latency-above",
      title: "added latency above the backend timeout",
      fault: "latency 1 s on a's responses (backendRequest 500 ms)",
      chaosMs: 5000,
      inject: onA({ type: "latency", attributes: { latency: 1000 } }),
      heal: removeAll,
      recoverWithinMs: 5000,
      expect: { retryOkMin: 0.99, plainShows: ["504"] },
    },
    {
      id: "bandwidth",
      title: "bandwidth limit (within the timeout)",
      fault: "64 KB/s on a's responses, 16 KiB bodies (≈ 250 ms each)",
      path: "/echo?size=16384",
      chaosMs: 4000,
      inject: onA({ type: "bandwidth", attributes: { rate: 64 } }),
      heal: removeAll,
      recoverWithinMs: 3000,
      expect: { retryOkMin: 1 },
    },
    {
      id: "bandwidth-beyond",
      title: "bandwidth limit (beyond the timeout)",
      fault: "8 KB/s on a's responses, 16 KiB bodies (≈ 2 s each)",
      path: "/echo?size=16384",
      chaosMs: 4000,
      inject: onA({ type: "bandwidth", attributes: { rate: 8 } }),
      heal: removeAll,
      recoverWithinMs: 5000,
      expect: { retryOkMin: 0.9, plainShows: ["cut"] },
    },
    {
      id: "reset-peer",
      title: "connection reset before the response",
      fault: "reset_peer (TCP RST as the response arrives) on a",
      chaosMs: 4000,
      inject: onA({ type: "reset_peer", attributes: { timeout: 0 } }),
      heal: removeAll,
      recoverWithinMs: 5000,
      // resets fail in microseconds: the retry route's tries can make the 5 failures that eject
      // a before a plain request reaches it (seen in CI: 502 0 of 12,419), so the fault shows
      // as reset upstream errors, not necessarily as a 502 to a plain client
      expect: { retryOkMin: 0.99, upstreamShows: ["reset"] },
    },
    {
      id: "cut-mid-response",
      title: "connection cut mid-response",
      fault: "limit_data 3000 B on a (every connection dies inside its 3rd response)",
      chaosMs: 4000,
      inject: onA({ type: "limit_data", attributes: { bytes: 3000 } }),
      heal: removeAll,
      recoverWithinMs: 5000,
      expect: { retryOkMin: 0.8, plainShows: ["cut"] },
    },
    {
      id: "blackhole",
      title: "blackhole",
      fault: "timeout toxic (data dropped, connection kept open) on a's responses",
      chaosMs: 5000,
      inject: onA({ type: "timeout", attributes: { timeout: 0 } }),
      heal: removeAll,
      recoverWithinMs: 5000,
      expect: { retryOkMin: 0.99, plainShows: ["504"] },
    },
    {
      id: "slow-close",
      title: "slow close",
      fault: "slow_close 3 s on a, close-delimited bodies (the end of a body is its FIN)",
      path: "/echo?size=1024&eof=1",
      chaosMs: 4000,
      inject: onA({ type: "slow_close", attributes: { delay: 3000 } }),
      heal: removeAll,
      recoverWithinMs: 6000,
      expect: { retryOkMin: 0.8, plainShows: ["cut"] },
    },
    {
      id: "vanish",
      title: "an endpoint vanishes and comes back",
      fault: "a's toxiproxy disabled (connections dropped, port closed) for 5 s, then enabled",
      chaosMs: 5000,
      inject: async env => void (await env.toxi.client.setEnabled(env.endpoints[0]!.proxy, false)),
      heal: async env => void (await env.toxi.client.setEnabled(env.endpoints[0]!.proxy, true)),
      recoverWithinMs: 45_000,
      waitBackend: "a",
      // the plain route loses only what was in flight on a when it went (0-2 requests a run)
      expect: { retryOkMin: 0.99, upstreamShows: ["connect|reset"] },
    },
    {
      id: "all-down",
      title: "all endpoints down",
      fault: "every endpoint's toxiproxy disabled for 4 s, then enabled",
      chaosMs: 4000,
      inject: async env => {
        for (const e of env.endpoints) await env.toxi.client.setEnabled(e.proxy, false);
      },
      heal: async env => {
        for (const e of env.endpoints) await env.toxi.client.setEnabled(e.proxy, true);
      },
      recoverWithinMs: 45_000,
      expect: { retryOkMin: 0, plainShows: ["503"] },
    },
  ];
}

export interface Resources {
  rssMb: number;
  fds: number;
  sockets: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  fault: string;
  /** what each route's clients saw from the injection to the recovery */
  during: { retry: Record<string, number>; plain: Record<string, number> };
  /** before the injection and after the recovery (should be all 200) */
  pre: Record<string, number>;
  post: Record<string, number>;
  maxMs: { retry: number; plain: number };
  /** upstream retries RAUTA made (rauta_upstream_retries_total) */
  retries: number;
  /** upstream errors by kind (rauta_upstream_errors_total) */
  upstreamErrors: Record<string, number>;
  /** from healing to the last failure (0: none after healing); null: not recovered in time */
  recoveryMs: number | null;
  /** from healing to the first response from the vanished backend */
  backMs: number | null;
  /** idle before the scenario (after the swap to its endpoints) */
  baseline: Resources;
  /** idle right after it */
  after: Resources;
  /**
   * idle after the next config swap: a serving worker collects and compacts its heap after
   * every applied config (runtime/v8-flags.ts compactHeap), as it did before `baseline`
   */
  settled: Resources | null;
  expect: Scenario["expect"];
  requests: number;
}

export interface ChaosReport {
  date: string;
  node: string;
  cores: number;
  durationS: number;
  start: Resources;
  end: Resources;
  /** how long after the last scenario the worker's sockets took to be back at the start's */
  endSettledMs: number | null;
  results: ScenarioResult[];
}

const ERROR_KINDS = ["connect", "reset", "timeout", "status", "protocol"];

async function counters(
  rauta: Rauta,
): Promise<{ retries: number; errors: Record<string, number> }> {
  const text = await rauta.metrics();
  const errors: Record<string, number> = {};
  for (const kind of ERROR_KINDS)
    errors[kind] = metricValue(text, "rauta_upstream_errors_total", { kind }) ?? 0;
  return { retries: metricValue(text, "rauta_upstream_retries_total") ?? 0, errors };
}

/** Idle resources of the worker: waits until its descriptors settle (upstream keep-alive ends). */
async function idleResources(rauta: Rauta, floor: number | null): Promise<Resources> {
  const deadline = Date.now() + 10_000;
  let last = fdsOf(rauta.workerPid);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(200);
    const now = fdsOf(rauta.workerPid);
    if (now.fds !== last.fds) {
      last = now;
      since = Date.now();
      continue;
    }
    if (floor !== null && now.sockets <= floor) break;
    if (Date.now() - since >= 2500) break;
  }
  return { rssMb: rssMb(rauta.workerPid), ...last };
}

/** The worker's TCP sockets as ss sees them (CHAOS_DEBUG=1: printed when a check fails). */
function socketsOf(pid: number): string {
  const out = spawnSync("ss", ["-tanpo"], { encoding: "utf8" }).stdout ?? "";
  return out
    .split("\n")
    .filter(l => l.includes(`pid=${pid},`))
    .join("\n");
}

function lines(results: Result[], from: number, to: number, stream?: string): Result[] {
  return results.filter(
    r => r.at >= from && r.at < to && (stream === undefined || r.stream === stream),
  );
}

/** A toxiproxy proxy for every backend, on fresh ports. */
async function createEndpoints(
  toxi: RunningToxiproxy,
  backends: Backend[],
  tag: string,
): Promise<Endpoint[]> {
  const fresh: Endpoint[] = [];
  for (const b of backends) {
    const name = `${tag}-${b.name}`;
    const info = await toxi.client.createProxy({
      name,
      listen: "127.0.0.1:0",
      upstream: `127.0.0.1:${b.port}`,
    });
    fresh.push({
      name: b.name,
      proxy: name,
      port: Number(info.listen.split(":").pop()),
      backend: b,
    });
  }
  return fresh;
}

/** The gateway's YAML with these endpoints, one EndpointSlice each. */
function writeConfig(dir: string, listenPort: number, endpoints: Endpoint[]): void {
  const yaml = gatewayYaml({
    port: listenPort,
    service: "chaos",
    endpoints: endpoints.map(e => ({ name: e.name, port: e.port })),
    routes: ROUTES,
  });
  writeAtomic(path.join(dir, "gateway.yaml"), yaml);
}

/** Fresh endpoints swapped into the EndpointSlices (waits for the new generation); old ones deleted. */
async function freshEndpoints(
  env: Env,
  tag: string,
  dir: string,
  listenPort: number,
): Promise<void> {
  const old = env.endpoints;
  const fresh = await createEndpoints(env.toxi, env.backends, tag);
  writeConfig(dir, listenPort, fresh);
  env.generation = await env.rauta.waitGeneration(env.generation);
  env.endpoints = fresh;
  for (const e of old) await env.toxi.client.deleteProxy(e.proxy).catch(() => {});
}

async function runScenario(env: Env, s: Scenario, baseline: Resources): Promise<ScenarioResult> {
  const results: Result[] = [];
  const p = s.path ?? DEFAULT_PATH;
  const load = new Load({
    port: env.rauta.port,
    streams: [
      { name: "retry", concurrency: CONCURRENCY.retry, path: () => `/r${p}` },
      { name: "plain", concurrency: CONCURRENCY.plain, path: () => `/n${p}` },
    ],
    capMs: 15_000,
    maxDurationMs: 120_000,
    onResult: r => results.push(r),
  });
  const before = await counters(env.rauta);
  load.start();
  await sleep(PRE_MS);
  const tInject = load.now();
  await s.inject(env);
  await sleep(s.chaosMs);
  await s.heal(env);
  const tHeal = load.now();
  // recovery: QUIET_MS without a failure (and the vanished backend answering again)
  let recoveredAt: number | null = null;
  let backAt: number | null = null;
  const limit = tHeal + s.recoverWithinMs;
  while (load.now() < limit) {
    await sleep(100);
    const now = load.now();
    if (s.waitBackend !== undefined && backAt === null) {
      const first = results.find(r => r.at >= tHeal && r.backend === s.waitBackend);
      if (first) backAt = first.at;
    }
    const lastBad = results.reduce((m, r) => (r.outcome !== "ok" && r.at > m ? r.at : m), tHeal);
    if (now - lastBad >= QUIET_MS && (s.waitBackend === undefined || backAt !== null)) {
      recoveredAt = lastBad;
      break;
    }
  }
  const tRecovered = load.now();
  await sleep(POST_MS);
  const tEnd = load.now();
  await load.stop();
  const after = await counters(env.rauta);
  const all = lines(results, 0, Infinity);
  const maxOf = (stream: string) =>
    all.filter(r => r.stream === stream).reduce((m, r) => Math.max(m, r.ms), 0);
  const upstreamErrors: Record<string, number> = {};
  for (const k of ERROR_KINDS) {
    const d = (after.errors[k] ?? 0) - (before.errors[k] ?? 0);
    if (d > 0) upstreamErrors[k] = d;
  }
  return {
    id: s.id,
    title: s.title,
    fault: s.fault,
    during: {
      retry: statusMix(lines(results, tInject, tRecovered, "retry")),
      plain: statusMix(lines(results, tInject, tRecovered, "plain")),
    },
    pre: statusMix(lines(results, 0, tInject)),
    post: statusMix(lines(results, tRecovered, tEnd + 1)),
    maxMs: { retry: Math.round(maxOf("retry")), plain: Math.round(maxOf("plain")) },
    retries: after.retries - before.retries,
    upstreamErrors,
    recoveryMs: recoveredAt === null ? null : Math.round(recoveredAt - tHeal),
    backMs: backAt === null ? null : Math.round(backAt - tHeal),
    baseline,
    after: await idleResources(env.rauta, baseline.sockets),
    settled: null,
    expect: s.expect,
    requests: all.length,
  };
}

/** Runs the scenarios (all, or those whose id is in `only`) and returns what was measured. */
export async function runChaos(only?: string[]): Promise<ChaosReport> {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-chaos-"));
  const backends = [await startBackend("a"), await startBackend("b"), await startBackend("c")];
  const toxi = await startToxiproxy();
  let rauta: Rauta | null = null;
  try {
    const listenPort = await freePort();
    const endpoints = await createEndpoints(toxi, backends, "warmup");
    writeConfig(dir, listenPort, endpoints);
    rauta = await startRauta({ dir, port: listenPort, metricsPort: await freePort() });
    const env: Env = { toxi, rauta, backends, endpoints, generation: await rauta.generation() };
    log(`rauta serve (worker pid ${rauta.workerPid}) on :${listenPort}; warming up`);
    // warm-up: the JIT, the pools and the heap reach their working size before any baseline
    const warm = new Load({
      port: listenPort,
      streams: [{ name: "warm", concurrency: 12, path: () => "/r/echo?size=16384" }],
      maxDurationMs: 10_000,
      onResult: () => {},
    });
    warm.start();
    await sleep(3000);
    await warm.stop();
    await freshEndpoints(env, "start", dir, listenPort);
    const start = await idleResources(rauta, null);
    const out: ScenarioResult[] = [];
    const list = scenarios().filter(s => !only || only.includes(s.id));
    for (const s of list) {
      await freshEndpoints(env, s.id, dir, listenPort);
      const baseline = await idleResources(rauta, start.sockets);
      const prev = out[out.length - 1];
      if (prev) prev.settled = baseline;
      log(`scenario ${s.id}: ${s.fault}`);
      const r = await runScenario(env, s, baseline);
      log(
        `  retry: ${formatMix(r.during.retry)}; plain: ${formatMix(r.during.plain)}; max ${r.maxMs.retry}/${r.maxMs.plain} ms; ` +
          `recovery ${r.recoveryMs ?? "NOT"} ms${r.backMs !== null ? `, back after ${r.backMs} ms` : ""}; ` +
          `rss ${baseline.rssMb.toFixed(1)}→${r.after.rssMb.toFixed(1)} MB, sockets ${baseline.sockets}→${r.after.sockets}`,
      );
      if (process.env.CHAOS_DEBUG && r.after.sockets > baseline.sockets)
        log(socketsOf(rauta.workerPid));
      out.push(r);
    }
    // every socket the scenarios opened must be gone (bounded: the pools' keep-alive timeout)
    await freshEndpoints(env, "end", dir, listenPort);
    const t1 = Date.now();
    let end = await idleResources(rauta, start.sockets);
    const last = out[out.length - 1];
    if (last) last.settled = end;
    while (end.sockets > start.sockets && Date.now() - t1 < 40_000) {
      await sleep(1000);
      end = { rssMb: rssMb(rauta.workerPid), ...fdsOf(rauta.workerPid) };
    }
    const endSettledMs = end.sockets <= start.sockets ? Date.now() - t1 : null;
    if (endSettledMs === null) log(`sockets left at the end:\n${socketsOf(rauta.workerPid)}`);
    return {
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cores: os.availableParallelism(),
      durationS: Math.round((Date.now() - t0) / 1000),
      start,
      end,
      endSettledMs,
      results: out,
    };
  } finally {
    await rauta?.stop();
    await toxi.stop();
    for (const b of backends) await b.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The report

/** Violations of a scenario's expectations (empty: it passed). */
export function check(r: ScenarioResult): string[] {
  const bad: string[] = [];
  const total = (m: Record<string, number>) => Object.values(m).reduce((s, n) => s + n, 0);
  const ok = (m: Record<string, number>) =>
    Object.entries(m)
      .filter(([k]) => /^2\d\d$/.test(k))
      .reduce((s, [, n]) => s + n, 0);
  if (ok(r.pre) !== total(r.pre)) bad.push(`failures before the fault: ${formatMix(r.pre)}`);
  if (ok(r.post) !== total(r.post)) bad.push(`failures after the recovery: ${formatMix(r.post)}`);
  for (const [name, m] of Object.entries({ ...r.during, pre: r.pre, post: r.post }))
    for (const k of ["client-timeout", "error"])
      if (m[k]) bad.push(`${name}: ${m[k]} × ${k} (RAUTA must always answer within its timeouts)`);
  const retryOk = ok(r.during.retry) / Math.max(1, total(r.during.retry));
  if (retryOk < r.expect.retryOkMin)
    bad.push(
      `retry route: ${(retryOk * 100).toFixed(1)}% 2xx < ${r.expect.retryOkMin * 100}% (${formatMix(r.during.retry)})`,
    );
  for (const k of r.expect.plainShows ?? [])
    if (!k.split("|").some(x => r.during.plain[x]))
      bad.push(`the fault did not show: no ${k} on the plain route (${formatMix(r.during.plain)})`);
  for (const k of r.expect.upstreamShows ?? [])
    if (!k.split("|").some(x => r.upstreamErrors[x]))
      bad.push(
        `the fault did not show: no ${k} upstream error (${JSON.stringify(r.upstreamErrors)})`,
      );
  // slack for a loaded 2-core machine: scheduling, not waiting
  const slack = 400;
  if (r.maxMs.retry > REQUEST_TIMEOUT_MS + slack)
    bad.push(`retry route waited ${r.maxMs.retry} ms > request timeout ${REQUEST_TIMEOUT_MS} ms`);
  if (r.maxMs.plain > BACKEND_TIMEOUT_MS + slack)
    bad.push(
      `plain route waited ${r.maxMs.plain} ms > backendRequest timeout ${BACKEND_TIMEOUT_MS} ms`,
    );
  if (r.recoveryMs === null) bad.push("did not recover in time");
  // undici (7.30, nodejs/undici#5845) replaces the connection of every request we abort in flight
  // (a backendRequest timeout) with a fresh one that then idles until the pool's keep-alive
  // timeout (30 s): up to one idle socket per timed-out attempt may still be open here; the
  // suite checks at the end that they all went (endSettled)
  const lingering = r.upstreamErrors.timeout ?? 0;
  if (r.after.sockets > r.baseline.sockets + 2 + lingering)
    bad.push(`sockets ${r.baseline.sockets} → ${r.after.sockets} (not back to the baseline)`);
  if (r.after.rssMb > r.baseline.rssMb + 40)
    bad.push(`RSS ${r.baseline.rssMb.toFixed(1)} → ${r.after.rssMb.toFixed(1)} MB right after`);
  if (r.settled !== null && r.settled.rssMb > r.baseline.rssMb + 10)
    bad.push(
      `RSS ${r.baseline.rssMb.toFixed(1)} → ${r.settled.rssMb.toFixed(1)} MB after the next swap`,
    );
  return bad;
}

/** Violations over the whole run: every socket gone at the end, memory back near the start. */
export function checkReport(report: ChaosReport): string[] {
  const bad: string[] = [];
  if (report.endSettledMs === null)
    bad.push(`sockets at the end ${report.end.sockets} > ${report.start.sockets} at the start`);
  if (report.end.rssMb > report.start.rssMb + 10)
    bad.push(
      `RSS ${report.start.rssMb.toFixed(1)} → ${report.end.rssMb.toFixed(1)} MB over the run`,
    );
  return bad;
}

export function markdown(report: ChaosReport): string {
  const byId = new Map(report.results.map(r => [r.id, r]));
  /** "5 × 504 in 20,060" — the failures of a route during a scenario */
  const failed = (id: string, route: "retry" | "plain") => {
    const m = byId.get(id)?.during[route];
    if (!m) return "(not run)";
    const total = Object.values(m).reduce((a, n) => a + n, 0);
    const bad = Object.entries(m).filter(([k]) => !/^2\d\d$/.test(k));
    const list = bad.length ? bad.map(([k, n]) => `${n} × ${k}`).join(" + ") : "no failure";
    return `${list} in ${total.toLocaleString("en-US")}`;
  };
  const sec = (ms: number | null | undefined) =>
    ms === null || ms === undefined ? "?" : `${(ms / 1000).toFixed(1)} s`;
  const rows = report.results.map(r => {
    const rec =
      r.recoveryMs === null
        ? "not in time"
        : `${sec(r.recoveryMs)}${r.backMs !== null ? `; a back after ${sec(r.backMs)}` : ""}`;
    const errs = Object.entries(r.upstreamErrors)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    return `| ${r.title} | ${r.fault} | ${formatMix(r.during.retry)} | ${formatMix(r.during.plain)} | ${r.maxMs.retry} / ${r.maxMs.plain} ms | ${r.retries}${errs ? ` (${errs})` : ""} | ${rec} | ${r.baseline.rssMb.toFixed(1)} → ${r.after.rssMb.toFixed(1)} → ${r.settled?.rssMb.toFixed(1) ?? "?"} MB | ${r.baseline.fds} → ${r.after.fds} (${r.baseline.sockets} → ${r.after.sockets}) |`;
  });
  const failures = [
    ...checkReport(report),
    ...report.results.flatMap(r => check(r).map(b => `${r.id}: ${b}`)),
  ];
  const maxRetry = Math.max(...report.results.map(r => r.maxMs.retry));
  const maxPlain = Math.max(...report.results.map(r => r.maxMs.plain));
  return [
    "`npm run chaos` (hack/chaos/scenarios.ts) runs every scenario and prints this section; `npm run chaos -- --write`",
    "also writes it here; `CHAOS_ONLY=blackhole,vanish npm run chaos` runs a subset. CI runs the same scenarios as",
    "test/chaos/chaos.spec.ts (from hack/test.sh; `RAUTA_SKIP_CHAOS=1` skips them off CI). toxiproxy",
    "(github.com/Shopify/toxiproxy/v2 v2.12.0) is built from its Go module on first use into",
    "~/.cache/rauta/toxiproxy-v2.12.0/ by hack/chaos/toxiproxy.ts, which also has the typed client for its API.",
    "",
    `Measured ${report.date} (${report.durationS} s for the run) on this project's machine (${report.cores} cores, shared; Node ${report.node}).`,
    "Topology: a closed-loop load generator → `rauta serve --workers 1` → toxiproxy (one proxy per endpoint) → three Node",
    "backends a, b, c (one EndpointSlice each). Two routes to the same Service, both with",
    "`timeouts: { request: 2s, backendRequest: 500ms }`:",
    `**retry** (\`retry: { attempts: 2, backoff: 20ms }\`, ${CONCURRENCY.retry} concurrent clients) and **plain** (no retry, ${CONCURRENCY.plain} clients),`,
    "GET with 1 KiB bodies unless the fault says otherwise. Every scenario starts on fresh endpoints (new toxiproxy ports",
    "hot-swapped into the EndpointSlices through the watched file, so no ejection or breaker state carries over), runs",
    `${PRE_MS / 1000} s clean, injects the fault, heals it, waits (bounded) for ${QUIET_MS / 1000} s without a failure, then runs ${POST_MS / 1000} s clean. The proxy`,
    "runs with its defaults: outlier ejection after 5 consecutive failures for 30 s (× the number of ejections), circuit",
    "breaker at ≥ 50% errors over ≥ 20 requests in 10 s, open for 30 s; retry budget 20% of active requests, at least 3.",
    "",
    "Status mix: what clients saw from the injection to the recovery; `cut` = the response had started (its head was",
    "forwarded) and was then cut, which no proxy can retry. Max latency: the slowest request of the whole scenario, retry /",
    `plain route, against the timeouts (request ${REQUEST_TIMEOUT_MS} ms; backendRequest ${BACKEND_TIMEOUT_MS} ms per try). Recovery: from healing to the`,
    "last failure. Worker RSS: idle before the scenario → idle right after it → after the next config swap (a serving",
    "worker collects and compacts its heap after every applied config, as it had before the first figure). Descriptors",
    "(sockets in parentheses): the worker's, idle, before → after.",
    "",
    "| scenario | fault | retry route | plain route | max latency | upstream retries (errors) | recovery | worker RSS | worker fds (sockets) |",
    "|---|---|---|---|---:|---|---|---:|---:|",
    ...rows,
    "",
    `Over the whole run the worker went from ${report.start.rssMb.toFixed(1)} MB RSS / ${report.start.fds} fds (${report.start.sockets} sockets), idle after the`,
    `warm-up, to ${report.end.rssMb.toFixed(1)} MB / ${report.end.fds} fds (${report.end.sockets} sockets), idle at the end${report.endSettledMs !== null ? ` (${sec(report.endSettledMs)} after the last scenario)` : ""}.`,
    failures.length === 0
      ? `Every check passed (hack/chaos/scenarios.ts \`check\`): no request waited past its timeouts (slowest: ${maxRetry} ms on the retry route, ${maxPlain} ms on the plain one) or went unanswered (the load generator's 15 s cap never fired), RAUTA never refused a connection, every scenario recovered, memory and sockets came back.`
      : `Checks that failed: ${failures.join("; ")}.`,
    "",
    "What the figures show:",
    "",
    `- **One slow, blackholed or resetting endpoint** is absorbed by retries: the retry route saw ${failed("latency-above", "retry")}`,
    `  requests with 1 s of added latency, ${failed("blackhole", "retry")} with a blackhole, ${failed("reset-peer", "retry")} with resets.`,
    "  Those few are the retry budget at work, not lost retries: when the tries in flight on the endpoint all fail at",
    "  once (a wave of timeouts, or resets and refused connects within milliseconds), at most 3 may wait in their retry",
    "  backoff at a time (20% of ~12 active requests, at least 3); the others answer with their error.",
    `  The plain route sees each failing try (${failed("latency-above", "plain")}, ${failed("blackhole", "plain")}, ${failed("reset-peer", "plain")}) until outlier`,
    "  detection ejects the endpoint after 5 consecutive failures; then none.",
    "- **Nothing waits longer than it is allowed to**: a try ends at the backendRequest timeout (500 ms), a request with",
    "  retries well within its request timeout (2 s); blackholed connections are aborted, not left to the 60 s pool timeout.",
    `- **A response whose head was forwarded cannot be retried**: a bandwidth limit beyond the timeout (retry route ${failed("bandwidth-beyond", "retry")}), a connection cut`,
    `  mid-body (limit_data: ${failed("cut-mid-response", "retry")}) and a close-delimited body whose FIN is delayed (slow_close: ${failed("slow-close", "retry")})`,
    "  all end as cut responses on both routes, bounded by the backendRequest timeout. toxiproxy ends connections with a",
    "  FIN (only reset_peer sends an RST, and it drops the data), so limit_data stands for every connection lost",
    "  mid-body: to HTTP a reset and a FIN there are alike, the body cannot complete. With limit_data every connection",
    "  to a dies inside its third response, so a's failures come between successes; outlier detection needs 5 in a row,",
    `  so how long a keeps cutting responses before it is ejected varies from run to run (here ${(byId.get("cut-mid-response")?.upstreamErrors.reset ?? 0).toLocaleString("en-US")} cut tries): a backend`,
    "  that breaks only some responses is ejected late or never. slow_close has no effect on keep-alive responses: RAUTA",
    "  ends a response at its Content-Length, never at the FIN.",
    `- **An endpoint that vanishes** costs the plain route what was in flight on it and the connects until it is ejected`,
    `  (${failed("vanish", "plain")}); the retry route hid nearly all of it (${failed("vanish", "retry")}, the budget again). It comes back only when its ejection ends:`,
    `  ${sec(byId.get("vanish")?.backMs)} after it was reachable again. \`rauta serve\` runs no active health checks, and passive detection cannot`,
    "  notice an ejected endpoint's return sooner.",
    `- **All endpoints down**: clients get fast 503s (connection refused, then the open circuit breaker), never a hang.`,
    `  The breaker opens once failures are half of its 10 s window's requests: at this load after ${(byId.get("all-down")?.upstreamErrors.connect ?? 0).toLocaleString("en-US")} refused`,
    "  tries, a second or two into the outage (until then every try fails in microseconds). Traffic returned",
    `  ${sec(byId.get("all-down")?.recoveryMs)} after the endpoints did, when the breaker's 30 s open period ended and its half-open probe succeeded.`,
    "- **Memory and sockets come back**: RSS after the next config swap is within a few MB of the baseline in every",
    "  scenario; every socket opened during a scenario is closed by the end of the run. undici 7.30 replaces the",
    "  connection of every request aborted in flight (a backendRequest timeout) with a fresh one that then idles until the",
    "  pool's 30 s keep-alive timeout ([nodejs/undici#5845](https://github.com/nodejs/undici/issues/5845), fix pending",
    "  upstream), so right after a timeout scenario up to one extra socket per timed-out try is still open (the checks",
    "  allow exactly that, and that they are gone at the end). Bounded, never a leak: those sockets are reused by later",
    "  requests to the endpoint or closed by the keep-alive timeout.",
    "",
    "Bugs found and fixed:",
    "",
    "- An attempt whose backendRequest timer fired while undici still queued its request (waiting for a connection:",
    "  pool at its limit, slow connect) answered 504 but left the request with undici, which sent it as soon as a",
    "  connection was free: a POST the client had been told failed would still run, and its late response hit a finished",
    "  exchange (a spurious `protocol` upstream error). `Attempt.error()` (proxy/server/handler.ts) now marks the attempt",
    "  over in every branch, so undici's `onConnect` aborts the request instead (test/unit/chaos/attempt-timeout.spec.ts).",
    "- Outlier ejection ran away under an outage: with every endpoint ejected, panic mode keeps sending them traffic, and",
    "  each 5 of its failures ejected the endpoint again with a higher multiplier, so an all-down outage of a few seconds",
    "  left every endpoint at the 10× cap (5 min ejections) — and the multiplier never decayed, so from then on any blip of",
    "  one endpoint took it out for 5 minutes. `ClusterRuntime.report()` (proxy/upstream/cluster.ts) no longer ejects an",
    "  endpoint that is already ejected, and forgets one multiplier step per base ejection time an endpoint has been back",
    "  (test/unit/chaos/outlier.spec.ts).",
  ].join("\n");
}

if (import.meta.main) {
  stopOnSignals();
  const only = process.env.CHAOS_ONLY?.split(",").filter(Boolean);
  // --from <report.json>: render (and --write) a saved run again instead of running
  const from = process.argv.indexOf("--from");
  const report =
    from > 0
      ? (JSON.parse(fs.readFileSync(process.argv[from + 1]!, "utf8")) as ChaosReport)
      : await runChaos(only);
  const text = markdown(report);
  console.log(text);
  let failed = 0;
  for (const bad of checkReport(report)) {
    failed++;
    console.error(`FAIL: ${bad}`);
  }
  for (const r of report.results) {
    const bad = check(r);
    if (bad.length) {
      failed++;
      console.error(`FAIL ${r.id}: ${bad.join("; ")}`);
    }
  }
  if (process.argv.includes("--write")) {
    const file = writeReliabilitySection("Chaos", text);
    log(`wrote ${path.relative(process.cwd(), file)} (section "Chaos")`);
  }
  if (from < 0)
    fs.writeFileSync(
      path.join(os.tmpdir(), "rauta-chaos-report.json"),
      JSON.stringify(report, null, 2),
    );
  process.exitCode = failed ? 1 : 0;
}
