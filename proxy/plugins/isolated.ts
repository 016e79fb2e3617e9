// A plugin run in its own worker thread. In-thread calls cost ~1 µs but a call that runs to its
// time limit holds the event loop for that long, and every request of the process waits; in a
// worker the same call costs a message round trip (~50-130 µs) and holds nothing. Plugins with
// isolation "Auto" start in-thread and move here the first time they hit their time limit;
// "Worker" starts here. The worker enforces the limit itself (the same wall-clock fuel slices);
// a watchdog terminates a worker that has work and answers nothing for twice the limit plus a
// margin, and a new one takes its place.
import { Worker } from "node:worker_threads";
import { packagePath } from "../runtime/package-root.ts";
import type { Phase } from "./abi.ts";
import type { LogLevel } from "./host-functions.ts";
import type { FromIsolated, IsolatedInit, ToIsolated } from "./isolated-worker.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "./sandbox.ts";

const WORKER_PATH = packagePath("proxy/plugins/isolated-worker.ts");
const BACKSTOP_MARGIN_MS = 250;

interface Pending {
  resolve(r: CallResult): void;
  t0: number;
}

export class IsolatedPlugin {
  private readonly init: IsolatedInit;
  private readonly log: (level: LogLevel, message: string) => void;
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** when the worker last answered (or was handed work while idle) */
  private lastProgress = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private closed = false;
  /** workers terminated by the backstop */
  terminations = 0;

  constructor(
    compiled: CompiledPlugin,
    configJson: string,
    limits: SandboxLimits,
    log: (level: LogLevel, message: string) => void,
  ) {
    this.init = {
      rautaIsolatedPlugin: 1,
      compiled: { ...compiled, exports: [...compiled.exports] },
      configJson,
      limits,
    };
    this.log = log;
  }

  private start(): Promise<void> {
    const w = new Worker(WORKER_PATH, {
      workerData: this.init,
      // guest memory is capped by the module; this caps the worker's own JS heap
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    this.worker = w;
    w.unref();
    return new Promise<void>((resolve, reject) => {
      w.on("message", (msg: FromIsolated) => {
        if (msg.type === "ready") resolve();
        else if (msg.type === "init-failed") reject(new Error(msg.message));
        else if (msg.type === "log") this.log(msg.level, msg.message);
        else this.settle(msg.id, msg.result);
      });
      w.once("error", (err: Error) => {
        reject(err);
        this.failAll(`the isolated plugin worker failed: ${err.message}`);
      });
      w.once("exit", () => {
        if (this.worker === w) {
          this.worker = null;
          this.ready = null;
        }
        this.failAll("the isolated plugin worker exited");
      });
    });
  }

  private settle(id: number, result: CallResult) {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    this.lastProgress = performance.now();
    if (this.pending.size === 0 && this.watchdog !== null) {
      clearInterval(this.watchdog);
      this.watchdog = null;
    }
    p.resolve(result);
  }

  // The worker runs calls one after another and stops each at its limit itself: it is stuck only
  // when it has work and answers nothing for 2x the limit + a margin (a queue is not stuck).
  private checkProgress = () => {
    const w = this.worker;
    const stuckMs = 2 * this.init.limits.timeoutMs + BACKSTOP_MARGIN_MS;
    if (w === null || this.pending.size === 0 || performance.now() - this.lastProgress < stuckMs)
      return;
    this.terminations++;
    this.worker = null;
    this.ready = null;
    const [first] = this.pending.keys();
    if (first !== undefined)
      this.settle(first, {
        ok: false,
        reason: "timeout",
        message: `no answer within ${stuckMs} ms; the worker was terminated`,
        ms: performance.now() - (this.pending.get(first)?.t0 ?? 0),
      });
    this.failAll("the isolated plugin worker was terminated (stuck)");
    void w.terminate();
  };

  private failAll(message: string) {
    for (const [id, p] of this.pending)
      this.settle(id, { ok: false, reason: "trap", message, ms: performance.now() - p.t0 });
  }

  async call(phase: Phase, input: Uint8Array): Promise<CallResult> {
    if (this.closed)
      return { ok: false, reason: "error", message: "the plugin was retired", ms: 0 };
    try {
      await (this.ready ??= this.start());
    } catch (err) {
      this.ready = null;
      return {
        ok: false,
        reason: "trap",
        message: `isolated instance did not start: ${(err as Error).message}`,
        ms: 0,
      };
    }
    const w = this.worker!;
    const id = this.nextId++;
    const t0 = performance.now();
    return new Promise<CallResult>(resolve => {
      if (this.pending.size === 0) this.lastProgress = t0;
      this.pending.set(id, { resolve, t0 });
      if (this.watchdog === null) {
        this.watchdog = setInterval(this.checkProgress, 25);
        this.watchdog.unref();
      }
      w.postMessage({ id, phase, input } satisfies ToIsolated);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.failAll("the plugin was retired");
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
