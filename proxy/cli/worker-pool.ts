// N serving worker processes (node:cluster, serve-worker.ts) behind one primary, shared by
// `rauta serve` and `rauta proxy --workers N`. The primary owns the config source; the pool
// hands every worker the latest config (and the TLS key pairs it references), replaces a worker
// that dies with one that gets the latest config, aggregates metrics, and drains them all.
import cluster from "node:cluster";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:cluster";
import client from "prom-client";
import { ConfigError, validateConfig } from "../config/load.ts";
import type { CompiledConfig } from "../config/schema.ts";
import type { AdminSources } from "../observability/admin.ts";
import type { Logger } from "../observability/logger.ts";
import type { ApplyResult, Proxy } from "../runtime/proxy.ts";
import { servingV8Flags, withV8Flags } from "../runtime/v8-flags.ts";
import type { SecretBundle } from "../tls/secrets.ts";
import type { FromWorker, ToWorker, WorkerSettings } from "./serve-worker.ts";
import { RestartBackoff } from "./restart-backoff.ts";
import type { RestartBackoffOptions } from "./restart-backoff.ts";

export interface Published {
  config: CompiledConfig;
  secrets: SecretBundle;
}

export type PublishResult = { ok: true } | { ok: false; generation: number; problems: string[] };

export interface WorkerPoolOptions {
  workers: number;
  /** serve-worker.ts entry (a bundle or the .ts source) */
  entry: string;
  settings: WorkerSettings;
  logger: Logger;
  restartBackoff?: Partial<RestartBackoffOptions>;
  /** every apply result of every worker; `first` is true for the lowest-numbered live worker */
  onApplied?(result: ApplyResult, worker: number, first: boolean): void;
}

/** /metrics and /readyz of whichever serves: the proxy in this process, or the worker pool. */
export function adminSources(proxy: Proxy | null, pool: WorkerPool | null): AdminSources {
  return {
    metrics: async () =>
      proxy
        ? {
            contentType: proxy.metrics.registry.contentType,
            body: await proxy.metrics.registry.metrics(),
          }
        : await pool!.metrics(),
    ready: () => (proxy ? proxy.ready : pool!.ready),
  };
}

export class WorkerPool {
  /** generation: the one the worker last applied successfully (none yet: not ready) */
  private readonly workers = new Map<Worker, { started: boolean; generation?: number }>();
  private latest: Published | null = null;
  private shuttingDown = false;
  private readonly aggregator = new client.AggregatorRegistry();
  private readonly opts: WorkerPoolOptions;
  private readonly backoff: RestartBackoff;
  /** the primary's own metrics, served next to the workers' aggregate */
  private readonly own = new client.Registry();
  private readonly restarts = new client.Counter({
    name: "rauta_worker_restarts_total",
    help: "Serving workers that exited and were replaced",
    registers: [this.own],
  });
  private readonly crashLoop = new client.Gauge({
    name: "rauta_worker_crash_loop",
    help: "1 while workers are crash-looping (replacements are delayed), else 0",
    registers: [this.own],
  });

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.backoff = new RestartBackoff(opts.restartBackoff);
    // Workers accept on the shared socket themselves (the kernel spreads connections): no
    // per-connection hand-off through the primary, and a connection can never be handed to a
    // worker that just died (with round-robin hand-off it would hang).
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: opts.entry,
      args: [],
      // the proxy's heap settings (runtime/v8-flags.ts); the primary keeps V8's
      execArgv: withV8Flags(process.execArgv, servingV8Flags()),
    });
    cluster.on("exit", (w, code, signal) => {
      if (!this.workers.delete(w) || this.shuttingDown) return;
      this.restarts.inc();
      const d = this.backoff.onExit(Date.now());
      this.crashLoop.set(d.crashLooping ? 1 : 0);
      if (d.crashLooping) {
        opts.logger.error("workers are crash-looping; delaying the replacement", {
          worker: w.id,
          code,
          signal,
          recentExits: d.recentExits,
          delayMs: d.delayMs,
        });
      } else
        opts.logger.error("worker exited; starting a replacement", { worker: w.id, code, signal });
      const t = setTimeout(() => {
        if (this.shuttingDown) return;
        this.crashLoop.set(this.backoff.crashLooping(Date.now()) ? 1 : 0);
        this.fork();
      }, d.delayMs);
      t.unref();
    });
    for (let i = 0; i < opts.workers; i++) this.fork();
  }

  /**
   * Validates the config against the schema here, once, and sends it to every worker now and to
   * every worker started later; workers only run checkConfig (they never load zod). A config
   * that fails is refused and the workers keep serving the previous one.
   */
  publish(input: { config: unknown; secrets: SecretBundle }): PublishResult {
    let config: CompiledConfig;
    try {
      config = validateConfig(input.config);
    } catch (err) {
      const generation = (input.config as { generation?: unknown } | null)?.generation;
      return {
        ok: false,
        generation: typeof generation === "number" ? generation : -1,
        problems: err instanceof ConfigError ? err.problems : [(err as Error).message],
      };
    }
    const published = { config, secrets: input.secrets };
    this.latest = published;
    // a worker that has not started yet gets it when it says so
    for (const [w, state] of this.workers) if (state.started) this.send(w, published);
    return { ok: true };
  }

  /** Ready once any worker serves a config. */
  get ready(): boolean {
    return [...this.workers.values()].some(w => w.generation !== undefined);
  }

  /** The generation every live worker serves (undefined until they all serve one). */
  get servedGeneration(): number | undefined {
    let min: number | undefined;
    for (const w of this.workers.values()) {
      if (w.generation === undefined) return undefined;
      min = min === undefined ? w.generation : Math.min(min, w.generation);
    }
    return min;
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return {
      contentType: this.aggregator.contentType,
      body: (await this.aggregator.clusterMetrics()) + (await this.own.metrics()),
    };
  }

  /** Drains every worker (in-flight requests get `graceMs`), then resolves. */
  drain(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    return new Promise(resolve => {
      if (this.workers.size === 0) return resolve();
      for (const w of this.workers.keys()) w.send({ type: "drain", graceMs } satisfies ToWorker);
      const t = setTimeout(() => {
        for (const w of this.workers.keys()) w.kill("SIGKILL");
        resolve();
      }, graceMs + 2000);
      t.unref();
      cluster.on("exit", () => {
        if (this.workers.size === 0) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  private send(w: Worker, p: Published) {
    w.send({ type: "config", config: p.config, secrets: p.secrets } satisfies ToWorker);
  }

  private fork() {
    const w = cluster.fork({
      RAUTA_WORKER_SETTINGS: JSON.stringify(this.opts.settings),
      // few glibc malloc arenas: V8's helper threads otherwise each grow their own and RSS
      // balloons with fragmentation (a common Node.js server setting)
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? "2",
    });
    this.workers.set(w, { started: false });
    w.on("message", (msg: FromWorker) => {
      const state = this.workers.get(w);
      if (!state) return;
      if (msg.type === "started") {
        state.started = true;
        if (this.latest) this.send(w, this.latest);
      } else if (msg.type === "applied") {
        if (msg.result.ok) state.generation = msg.result.generation;
        const first = w.id === Math.min(...[...this.workers.keys()].map(x => x.id));
        this.opts.onApplied?.(msg.result, w.id, first);
      }
    });
  }
}

// Workers (serve-worker.ts) run from a bundle built at start-up when esbuild is available: one
// ESM file instead of ~100 TypeScript modules stripped at load time saves ~30 MB of RSS per
// worker. Without esbuild the worker runs from its .ts source.

const WORKER_SOURCE = fileURLToPath(new URL("./serve-worker.ts", import.meta.url));

export async function workerEntry(logger: Logger): Promise<string> {
  const out = fileURLToPath(new URL("../../.cache/rauta-serve-worker.mjs", import.meta.url));
  try {
    const esbuild = await import("esbuild");
    const result = await esbuild.build({
      entryPoints: [WORKER_SOURCE],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      packages: "external",
      outfile: out,
      write: false,
      logLevel: "silent",
    });
    await esbuild.stop(); // its service process would otherwise stay alive next to the workers
    // write-then-rename: several `rauta serve`/`rauta proxy` processes may share the checkout
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, result.outputFiles[0]!.contents);
    fs.renameSync(tmp, out);
    return out;
  } catch (err) {
    logger.debug("worker bundle not built; workers run from TypeScript sources", {
      error: (err as Error).message,
    });
    return WORKER_SOURCE;
  }
}
