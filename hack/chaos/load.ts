// A closed-loop load generator: a fixed number of concurrent request loops per stream, keep-alive
// connections (one per loop), every request capped in time so a run always ends. Each result is
// classified: ok (2xx, whole body), status (another status, whole body), cut (the response
// started but did not end: the proxy cut it), error (no response: connection refused or reset),
// client-timeout (nothing within the cap: something waited past every configured timeout).
import http from "node:http";

export type Outcome = "ok" | "status" | "cut" | "error" | "client-timeout";

export interface Result {
  /** ms since the load started, when the request ended */
  at: number;
  stream: string;
  ms: number;
  status: number;
  outcome: Outcome;
  /** x-backend of the response ("" when none) */
  backend: string;
  detail: string;
}

export interface LoadStream {
  name: string;
  concurrency: number;
  /** the request path (called for every request) */
  path: () => string;
  /** pacing: each loop starts a request at most every intervalMs (default: back to back) */
  intervalMs?: number;
}

export interface LoadOptions {
  port: number;
  streams: LoadStream[];
  /** hard cap per request (default 15 s) */
  capMs?: number;
  /** stop by itself after this long (default 60 min) */
  maxDurationMs?: number;
  onResult: (r: Result) => void;
}

export class Load {
  private readonly opts: LoadOptions;
  private readonly agent: http.Agent;
  private running = false;
  private loops: Promise<void>[] = [];
  private t0 = 0;
  private stopTimer: NodeJS.Timeout | null = null;
  inflight = 0;

  constructor(opts: LoadOptions) {
    this.opts = opts;
    const total = opts.streams.reduce((s, x) => s + x.concurrency, 0);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: total, maxFreeSockets: total });
  }

  /** ms since start() */
  now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = performance.now();
    for (const s of this.opts.streams)
      for (let i = 0; i < s.concurrency; i++) this.loops.push(this.loop(s));
    this.stopTimer = setTimeout(() => void this.stop(), this.opts.maxDurationMs ?? 3_600_000);
    this.stopTimer.unref();
  }

  /** Stops issuing requests, waits for the in-flight ones, closes the client connections. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.stopTimer !== null) clearTimeout(this.stopTimer);
    await Promise.all(this.loops);
    this.loops = [];
    this.agent.destroy();
  }

  private async loop(s: LoadStream): Promise<void> {
    const interval = s.intervalMs ?? 0;
    // loops start spread over one interval, not in lockstep
    let next = performance.now() + Math.random() * interval;
    while (this.running) {
      if (interval > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise(res => setTimeout(res, wait));
        next = Math.max(next + interval, performance.now() - interval);
        if (!this.running) break;
      }
      const r = await this.once(s);
      this.opts.onResult(r);
      // no hot loop while the proxy refuses connections
      if (r.outcome === "error") await new Promise(res => setTimeout(res, 20));
    }
  }

  private once(s: LoadStream): Promise<Result> {
    const cap = this.opts.capMs ?? 15_000;
    const path = s.path();
    return new Promise(resolve => {
      const start = performance.now();
      let settled = false;
      let status = 0;
      let backend = "";
      this.inflight++;
      const done = (outcome: Outcome, detail = "") => {
        if (settled) return;
        settled = true;
        this.inflight--;
        clearTimeout(timer);
        const end = performance.now();
        resolve({
          at: end - this.t0,
          stream: s.name,
          ms: end - start,
          status,
          outcome,
          backend,
          detail,
        });
      };
      const req = http.request(
        { host: "127.0.0.1", port: this.opts.port, path, agent: this.agent },
        res => {
          status = res.statusCode ?? 0;
          const b = res.headers["x-backend"];
          backend = typeof b === "string" ? b : "";
          res.on("data", () => {});
          res.on("error", (e: Error & { code?: string }) => done("cut", e.code ?? e.message));
          res.on("close", () => {
            if (!res.complete) return done("cut", "incomplete body");
            done(status >= 200 && status < 300 ? "ok" : "status");
          });
        },
      );
      req.on("error", (e: Error & { code?: string }) =>
        done(status === 0 ? "error" : "cut", e.code ?? e.message),
      );
      const timer = setTimeout(() => {
        req.destroy();
        done("client-timeout", `no answer within ${cap} ms`);
      }, cap);
      req.end();
    });
  }
}

/** Counts of results by status (or outcome, for those without a complete response). */
export function statusMix(results: Result[]): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const r of results) {
    const k = r.outcome === "ok" || r.outcome === "status" ? String(r.status) : r.outcome;
    mix[k] = (mix[k] ?? 0) + 1;
  }
  return mix;
}

export function formatMix(mix: Record<string, number>): string {
  const total = Object.values(mix).reduce((s, n) => s + n, 0);
  if (total === 0) return "–";
  return Object.entries(mix)
    .sort(([a], [b]) => (a === "200" ? -1 : b === "200" ? 1 : a.localeCompare(b)))
    .map(([k, n]) => `${k} ${n} (${((100 * n) / total).toFixed(n === total ? 0 : 1)}%)`)
    .join(", ");
}
