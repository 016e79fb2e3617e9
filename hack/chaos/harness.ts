// What the chaos scenarios (hack/chaos/scenarios.ts) and the soak (hack/soak/run.ts) share:
// Node echo backends, the Gateway API YAML they serve, `rauta serve --workers 1` as a child
// process (so its worker's RSS and file descriptors can be read from /proc), /metrics parsing
// and the docs/reliability.md section writer. Everything listens on and talks to 127.0.0.1 only.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export function log(msg: string): void {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

// Child processes (rauta serve, toxiproxy) never outlive the run: whatever ends this process
// (an error, a closed pipe, a signal through stopOnSignals) kills the ones still running.
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once("exit", () => children.delete(c));
  return c;
}
/** For command-line entry points: SIGINT/SIGTERM end the process (and so its children). */
export function stopOnSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));
}

// ---------------------------------------------------------------------------------------------
// Backends

/**
 * A Node HTTP backend. Query parameters: size=<bytes> (body, default 100), delay=<ms> (before
 * the head), eof=1 (a close-delimited body: no Content-Length, no chunking, the connection
 * closes after it). Every response carries x-backend: <name>.
 */
export interface Backend {
  name: string;
  port: number;
  requests: number;
  listening: boolean;
  /** (Re)starts listening on the same port. */
  start(): Promise<void>;
  /** Stops listening and closes idle connections (as a terminating pod); in-flight ones finish. */
  stop(): Promise<void>;
}

const bodies = new Map<number, Buffer>();
function bodyOf(size: number): Buffer {
  let b = bodies.get(size);
  if (b === undefined) {
    b = Buffer.alloc(size, "x");
    if (bodies.size < 64) bodies.set(size, b);
  }
  return b;
}

export async function startBackend(name: string, port = 0): Promise<Backend> {
  let server: http.Server | null = null;
  const b: Backend = {
    name,
    port,
    requests: 0,
    listening: false,
    async start() {
      if (server !== null) return;
      const s = http.createServer({ keepAliveTimeout: 4000 }, (req, res) => {
        b.requests++;
        const q = new URL(req.url ?? "/", "http://x").searchParams;
        const size = Math.min(Number(q.get("size") ?? 100) || 0, 4 << 20);
        const delay = Math.min(Number(q.get("delay") ?? 0) || 0, 60_000);
        const eof = q.get("eof") === "1";
        req.resume();
        const respond = () => {
          if (res.destroyed) return;
          res.setHeader("content-type", "text/plain");
          res.setHeader("x-backend", name);
          if (eof) {
            res.setHeader("connection", "close");
            res.removeHeader("content-length");
            res.removeHeader("transfer-encoding"); // both removed: the body ends at the close
          } else res.setHeader("content-length", size);
          res.end(bodyOf(size));
        };
        if (delay > 0) {
          const t = setTimeout(respond, delay);
          res.once("close", () => clearTimeout(t));
        } else respond();
      });
      s.on("clientError", (_err, socket) => socket.destroy());
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(b.port, "127.0.0.1", () => resolve());
      });
      b.port = (s.address() as net.AddressInfo).port;
      server = s;
      b.listening = true;
    },
    async stop() {
      const s = server;
      if (s === null) return;
      server = null;
      b.listening = false;
      const closed = new Promise<void>(r => s.close(() => r()));
      s.closeIdleConnections();
      const t = setTimeout(() => s.closeAllConnections(), 5000);
      await closed;
      clearTimeout(t);
    },
  };
  await b.start();
  return b;
}

// ---------------------------------------------------------------------------------------------
// Gateway API YAML

export interface RouteSpec {
  name: string;
  prefix: string;
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { attempts: number; backoff?: string; codes?: number[] };
  /** a response header (x-config) whose value changes on every config swap in the soak */
  configHeader?: string;
}

export interface GatewaySpec {
  port: number;
  service: string;
  /** one EndpointSlice per endpoint (each its own port) */
  endpoints: Array<{ name: string; port: number; ready?: boolean }>;
  routes: RouteSpec[];
}

export function gatewayYaml(spec: GatewaySpec): string {
  const docs: string[] = [
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: rauta }
spec: { controllerName: rauta.io/gateway-controller }`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: chaos, namespace: default }
spec:
  gatewayClassName: rauta
  listeners:
    - { name: http, protocol: HTTP, port: ${spec.port} }`,
    `apiVersion: v1
kind: Service
metadata: { name: ${spec.service}, namespace: default }
spec: { ports: [{ name: http, port: 80 }] }`,
  ];
  for (const r of spec.routes) {
    const lines = [
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${r.name}, namespace: default }
spec:
  parentRefs: [{ name: chaos }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: ${r.prefix} } }]
      backendRefs: [{ name: ${spec.service}, port: 80 }]`,
    ];
    if (r.timeouts) {
      const t = Object.entries(r.timeouts).map(([k, v]) => `${k}: ${v}`);
      lines.push(`      timeouts: { ${t.join(", ")} }`);
    }
    if (r.retry) {
      const parts = [`attempts: ${r.retry.attempts}`];
      if (r.retry.backoff) parts.push(`backoff: ${r.retry.backoff}`);
      if (r.retry.codes) parts.push(`codes: [${r.retry.codes.join(", ")}]`);
      lines.push(`      retry: { ${parts.join(", ")} }`);
    }
    if (r.configHeader !== undefined)
      lines.push(`      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: X-Config, value: "${r.configHeader}" }] }`);
    docs.push(lines.join("\n"));
  }
  for (const e of spec.endpoints)
    docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${spec.service}-${e.name}, namespace: default, labels: { kubernetes.io/service-name: ${spec.service} } }
addressType: IPv4
ports: [{ name: http, port: ${e.port}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: ${e.ready ?? true} } }]`);
  return `${docs.join("\n---\n")}\n`;
}

/** Replaces the file atomically (write, then rename), as editors and config syncers do. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// /proc

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(
      fs.readFileSync(`/proc/${pid}/status`, "utf8"),
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
export const rssMb = (pid: number) => statusKb(pid, "VmRSS") / 1024;

/** Open file descriptors of a process, and how many of them are sockets. */
export function fdsOf(pid: number): { fds: number; sockets: number } {
  let fds = 0;
  let sockets = 0;
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { fds: 0, sockets: 0 };
  }
  for (const n of names) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${n}`);
      fds++;
      if (target.startsWith("socket:")) sockets++;
    } catch {
      // closed while we looked
    }
  }
  return { fds, sockets };
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap(t =>
        fs
          .readFileSync(`/proc/${pid}/task/${t}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number),
      );
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// rauta serve

export async function waitPort(port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}

export interface Rauta {
  primary: ChildProcess;
  /** the one serving worker */
  workerPid: number;
  port: number;
  metricsPort: number;
  /** the last lines rauta wrote to stderr */
  stderr(): string;
  metrics(): Promise<string>;
  generation(): Promise<number>;
  /** Waits until the worker serves a generation newer than `than`. */
  waitGeneration(than: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** `rauta serve -f <dir> --workers 1` on 127.0.0.1, with /metrics on its own port. */
export async function startRauta(opts: {
  dir: string;
  port: number;
  metricsPort: number;
}): Promise<Rauta> {
  const primary = track(
    spawn(
      process.execPath,
      [
        path.join(ROOT, "proxy/bin/rauta.ts"),
        "serve",
        "-f",
        opts.dir,
        "--workers",
        "1",
        "--metrics-port",
        String(opts.metricsPort),
        "--address",
        "127.0.0.1",
      ],
      {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, RAUTA_LOG_LEVEL: "warn" },
      },
    ),
  );
  let err = "";
  primary.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<void>(r => primary.once("exit", () => r()));
  let started = false;
  try {
    await Promise.race([
      waitPort(opts.port, 120_000),
      exited.then(() => {
        // only while starting: its exit after stop() (or after a failed start) is no error
        if (!started) throw new Error(`rauta serve exited ${primary.exitCode}: ${err}`);
      }),
    ]);
    started = true;
  } catch (e) {
    started = true; // the error is e; its exit is reported by nobody else
    primary.kill("SIGKILL");
    throw e;
  }
  const workers = childrenOf(primary.pid!).filter(p => cmdline(p).includes("serve-worker"));
  if (workers.length !== 1) throw new Error(`expected one serving worker, found ${workers.length}`);
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${opts.metricsPort}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    });
    return res.text();
  };
  const generation = async () => metricValue(await metrics(), "rauta_config_generation") ?? 0;
  return {
    primary,
    workerPid: workers[0]!,
    port: opts.port,
    metricsPort: opts.metricsPort,
    stderr: () => err,
    metrics,
    generation,
    async waitGeneration(than: number, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const g = await generation();
        if (g > than) return g;
        if (Date.now() > deadline)
          throw new Error(`rauta did not apply a generation after ${than}: ${err.slice(-2000)}`);
        await sleep(50);
      }
    },
    async stop() {
      if (primary.exitCode !== null || primary.signalCode !== null) return;
      primary.kill("SIGTERM");
      const t = setTimeout(() => primary.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Prometheus text

/** The value of a sample (the sum over the series matching every given label). */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | null {
  let sum: number | null = null;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    let labelText = "";
    let value = rest;
    if (rest[0] === "{") {
      const end = rest.indexOf("}");
      labelText = rest.slice(1, end);
      value = rest.slice(end + 1);
    }
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    const v = Number(value.trim().split(" ")[0]);
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** Least-squares slope of y over x. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

// ---------------------------------------------------------------------------------------------
// docs/reliability.md

/**
 * Replaces the body of `## <heading>` in docs/reliability.md (up to the next `## ` heading),
 * leaving every other section as it is; creates the file, or appends the section, if missing.
 */
export function writeReliabilitySection(heading: string, body: string): string {
  const file = path.join(ROOT, "docs/reliability.md");
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "# Reliability\n";
  const lines = text.split("\n");
  const start = lines.findIndex(l => l.trim() === `## ${heading}`);
  const section = [`## ${heading}`, "", ...body.trimEnd().split("\n"), ""];
  let out: string[];
  if (start === -1) out = [...text.trimEnd().split("\n"), "", ...section];
  else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end === -1) end = lines.length;
    out = [...lines.slice(0, start), ...section, ...lines.slice(end)];
  }
  fs.writeFileSync(file, `${out.join("\n").trimEnd()}\n`);
  return file;
}
