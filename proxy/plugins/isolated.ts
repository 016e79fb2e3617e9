// A plugin run in a process of its own ("the worker"). In-thread calls cost ~1 µs but a call
// that runs to its time limit holds the event loop for that long, and every request of the
// process waits; isolated, the same call costs an IPC round trip and holds nothing. The process
// runs at the lowest CPU priority (nice 19): a plugin spinning to its limit there only gets CPU
// that serving does not want (a worker thread, tried first, competed with the event loop for the
// cores: p99 of other routes 4x under a spin attack on a 2-core machine). Plugins with isolation
// "Auto" start in-thread and move here the first time they hit their time limit; "Worker" starts
// here. The worker enforces the limit itself (the same wall-clock fuel slices); a watchdog kills
// a worker that has work and answers nothing for twice the limit plus a margin, and a new one
// takes its place.
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import os from "node:os";
import { packagePath } from "../runtime/package-root.ts";
import type { Phase } from "./abi.ts";
import type { LogLevel } from "./host-functions.ts";
import type { FromIsolated, IsolatedInit, ToIsolated } from "./isolated-worker.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "./sandbox.ts";

const CHILD_PATH = packagePath("proxy/plugins/isolated-worker.ts");
const BACKSTOP_MARGIN_MS = 250;

interface Pending {
  resolve(r: CallResult): void;
  t0: number;
}

export class IsolatedPlugin {
  private readonly init: IsolatedInit;
  private readonly log: (level: LogLevel, message: string) => void;
  private worker: ChildProcess | null = null;
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
    const { module: _module, ...rest } = compiled;
    if (compiled.bytes === undefined) throw new Error("isolation needs the module's bytes");
    this.init = {
      rautaIsolatedPlugin: 1,
      compiled: { ...rest, bytes: compiled.bytes, exports: [...compiled.exports] },
      configJson,
      limits,
    };
    this.log = log;
  }

  private start(): Promise<void> {
    const w = fork(CHILD_PATH, [], {
      serialization: "advanced",
      execArgv: [],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, RAUTA_ISOLATED_PLUGIN: "1", MALLOC_ARENA_MAX: "2" },
    });
    this.worker = w;
    // lowest priority: a spinning plugin gets only CPU nothing else wants
    try {
      if (w.pid !== undefined) os.setPriority(w.pid, 19);
    } catch {
      // not permitted here: still isolated, only not deprioritized
    }
    w.unref();
    w.channel?.unref();
    return new Promise<void>((resolve, reject) => {
      w.on("message", (msg: FromIsolated) => {
        if (msg.type === "ready") resolve();
        else if (msg.type === "init-failed") reject(new Error(msg.message));
        else if (msg.type === "log") this.log(msg.level, msg.message);
        else this.settle(msg.id, msg.result);
      });
      w.once("error", (err: Error) => {
        reject(err);
        this.failAll(`the isolated plugin process failed: ${err.message}`);
      });
      w.once("exit", code => {
        reject(new Error(`the isolated plugin process exited (code ${code})`));
        if (this.worker === w) {
          this.worker = null;
          this.ready = null;
        }
        this.failAll("the isolated plugin process exited");
      });
      w.send(this.init);
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
    w.kill("SIGKILL");
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
      w.send({ id, phase, input } satisfies ToIsolated);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.failAll("the plugin was retired");
    const w = this.worker;
    this.worker = null;
    w?.kill("SIGKILL");
  }
}
