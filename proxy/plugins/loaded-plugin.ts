// One plugin of one config generation, ready to run: its compiled module, its config and limits,
// and a small pool of instances. Calls run in-thread (the guest is stopped by fuel, not by a
// thread), so a call holds its instance only for the few microseconds it runs; the pool exists
// because Extism's call is asynchronous around a synchronous guest run, and an instance must
// never see two calls interleave. Any failure discards the instance. A plugin that keeps failing
// is opened like a circuit breaker: while open, calls are not made and the failure policy answers
// at once, so a broken plugin costs nothing per request and its log does not flood.
import type { Plugin } from "../config/schema.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { AbiError, decodeDecision } from "./abi.ts";
import type { Decision, Phase } from "./abi.ts";
import type { CallInput } from "./call-input.ts";
import { KeyCache, RateLimitStore } from "./host-functions.ts";
import { PluginCache } from "./plugin-cache.ts";
import type { HostServices } from "./host-functions.ts";
import { PluginInstance } from "./sandbox.ts";
import { IsolatedPlugin } from "./isolated.ts";
import type { CallResult, CompiledPlugin, FailureReason, SandboxLimits } from "./sandbox.ts";

export type Outcome =
  | { ok: true; decision: Decision }
  | { ok: false; reason: FailureReason | "unavailable"; message: string };

export interface BreakerOptions {
  /** consecutive failures that open the breaker */
  failures: number;
  openMs: number;
  maxOpenMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failures: 5, openMs: 1000, maxOpenMs: 30_000 };

/**
 * Fuel units between two wall-clock checks of a call (the refuel host call, instrument.ts). The
 * time limit itself is wall clock; fuel only decides how often it is looked at. Measured with the
 * nodes-v2 fuel model: a tight loop burns ~6M units/ms, fib ~8.3M, a Go handler ~12M, a dense
 * counting loop ~18M, so a slice is 0.05-0.17 ms of guest work and a call overruns its limit by
 * at most that (docs/plugins.md).
 */
export const FUEL_SLICE = 1_000_000;

const MAX_POOL = 16;

/**
 * How long an isolation-Auto call may hold the event loop. Every request of the process waits
 * while a plugin runs in-thread, so a call that runs past this is stopped (that request gets the
 * failure policy's answer, reason timeout) and the plugin moves to its own process, where calls
 * get the full limits.timeoutMs. Built-ins take microseconds; a plugin that needs more than this
 * per call belongs in isolation Worker.
 */
export const INLINE_BUDGET_MS = 10;

export class LoadedPlugin {
  readonly id: string;
  readonly spec: Plugin;
  readonly compiled: CompiledPlugin;
  readonly hasRequest: boolean;
  readonly hasResponse: boolean;
  private readonly limits: SandboxLimits;
  /** in-thread calls: isolation Auto stops them at INLINE_BUDGET_MS, Inline at the full limit */
  private readonly inlineLimits: SandboxLimits;
  private readonly idle: PluginInstance[] = [];
  private readonly services: HostServices;
  private readonly configJson: string;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly breaker: BreakerOptions;
  /** calls go to a process of their own (isolation Worker, or Auto after a timeout) */
  private isolated: IsolatedPlugin | null = null;
  private live = 0;
  private consecutiveFailures = 0;
  private openUntil = 0;
  private openMs: number;
  private closed = false;
  /** metric children of the per-call path, resolved once (a labels() lookup per call costs µs) */
  private readonly hot: Record<
    Phase,
    Record<Decision["action"], { inc(): void }> & { duration: { observe(v: number): void } }
  >;

  constructor(
    spec: Plugin,
    compiled: CompiledPlugin,
    deps: {
      metrics: Metrics;
      logger: Logger;
      breaker?: BreakerOptions;
      rateLimits?: RateLimitStore;
      keys?: KeyCache;
    },
  ) {
    this.id = spec.id;
    this.spec = spec;
    this.compiled = compiled;
    this.hasRequest = compiled.exports.has("on_request");
    this.hasResponse = compiled.exports.has("on_response");
    this.metrics = deps.metrics;
    this.logger = deps.logger.child({ plugin: spec.id, digest: compiled.digest });
    this.breaker = deps.breaker ?? DEFAULT_BREAKER;
    this.openMs = this.breaker.openMs;
    this.configJson = JSON.stringify(spec.config);
    const hotOf = (phase: Phase) => ({
      continue: this.metrics.pluginCalls.labels(spec.id, phase, "continue"),
      reject: this.metrics.pluginCalls.labels(spec.id, phase, "reject"),
      modify: this.metrics.pluginCalls.labels(spec.id, phase, "modify"),
      duration: this.metrics.pluginDuration.labels(spec.id, phase),
    });
    this.hot = { request: hotOf("request"), response: hotOf("response") };
    this.limits = {
      timeoutMs: spec.limits.timeoutMs,
      fuel: compiled.metered ? FUEL_SLICE : Infinity,
      outputCapBytes: 1024 * 1024,
    };
    this.inlineLimits =
      (spec.isolation ?? "Auto") === "Auto"
        ? { ...this.limits, timeoutMs: Math.min(spec.limits.timeoutMs, INLINE_BUDGET_MS) }
        : this.limits;
    const log = this.logger;
    if (spec.isolation === "Worker") this.isolate();
    this.services = {
      log: (level, message) => log.log(level, "plugin log", { message }),
      rateLimits: deps.rateLimits ?? new RateLimitStore(),
      keys: deps.keys ?? new KeyCache(),
      cache: new PluginCache(),
      now: Date.now,
    };
  }

  /** Creates the first instance, so a config with a plugin that cannot even start is refused. */
  async warm(): Promise<void> {
    this.idle.push(await this.newInstance());
  }

  /** Whether calls now run in a process of their own. */
  get isIsolated(): boolean {
    return this.isolated !== null;
  }

  private isolate() {
    this.isolated = new IsolatedPlugin(
      this.compiled,
      this.configJson,
      this.limits,
      (level, message) => this.logger.log(level, "plugin log", { message, isolated: true }),
    );
    this.metrics.pluginIsolated.labels(this.id).set(1);
  }

  private async newInstance(): Promise<PluginInstance> {
    const inst = await PluginInstance.create(this.compiled, {
      configJson: this.configJson,
      services: this.services,
    });
    this.live++;
    return inst;
  }

  get failurePolicy(): Plugin["failurePolicy"] {
    return this.spec.failurePolicy;
  }

  /**
   * Runs one phase; never throws. Synchronous when an idle instance runs it in-thread (the usual
   * case), so a chain of plugins stays on one tick; a promise when the call goes to the worker,
   * a new instance must be made first, or the module needs Extism's own call path.
   */
  run(phase: Phase, input: CallInput | Uint8Array): Outcome | Promise<Outcome> {
    const now = this.openUntil > 0 ? Date.now() : 0;
    if (this.openUntil > now) {
      this.metrics.pluginCalls.labels(this.id, phase, "skipped").inc();
      return {
        ok: false,
        reason: "unavailable",
        message: `plugin ${this.id} is failing repeatedly; calls resume in ${this.openUntil - now} ms`,
      };
    }
    if (this.isolated !== null)
      return this.runIsolated(phase, input instanceof Uint8Array ? input : input.bytes());
    const inst = this.idle.pop();
    if (inst === undefined) return this.runOnNewInstance(phase, input);
    const r = inst.call(phase, input, this.inlineLimits);
    return r instanceof Promise
      ? r.then(res => this.settle(phase, inst, res))
      : this.settle(phase, inst, r);
  }

  private async runIsolated(phase: Phase, input: Uint8Array): Promise<Outcome> {
    const r = await this.isolated!.call(phase, input);
    this.hot[phase].duration.observe(r.ms / 1000);
    if (!r.ok) return this.failed(phase, null, r.reason, r.message);
    return this.decided(phase, r.output);
  }

  private async runOnNewInstance(phase: Phase, input: CallInput | Uint8Array): Promise<Outcome> {
    if (this.live >= MAX_POOL || this.closed)
      return this.failed(phase, null, "unavailable", `plugin ${this.id}: no instance available`);
    let inst: PluginInstance;
    try {
      inst = await this.newInstance();
    } catch (err) {
      return this.failed(phase, null, "trap", `instantiation failed: ${(err as Error).message}`);
    }
    return this.settle(phase, inst, await inst.call(phase, input, this.inlineLimits));
  }

  private settle(phase: Phase, inst: PluginInstance, r: CallResult): Outcome {
    this.hot[phase].duration.observe(r.ms / 1000);
    if (!r.ok) {
      if (
        r.reason === "timeout" &&
        (this.spec.isolation ?? "Auto") === "Auto" &&
        this.isolated === null
      ) {
        // it held the event loop for its whole in-thread budget: from now on it runs where a
        // spin costs this process nothing
        this.isolate();
        this.logger.warn(
          "plugin ran past its in-thread budget; its calls now run in a process of their own",
          { inlineBudgetMs: this.inlineLimits.timeoutMs, timeoutMs: this.spec.limits.timeoutMs },
        );
        return this.failed(
          phase,
          inst,
          r.reason,
          `${r.message} (in-thread budget ${this.inlineLimits.timeoutMs} ms; now isolated with the full ${this.spec.limits.timeoutMs} ms)`,
        );
      }
      return this.failed(phase, inst, r.reason, r.message);
    }
    this.release(inst);
    return this.decided(phase, r.output);
  }

  private decided(phase: Phase, output: Uint8Array): Outcome {
    let decision: Decision;
    try {
      decision = decodeDecision(output, phase);
    } catch (err) {
      const message = err instanceof AbiError ? `invalid decision: ${err.message}` : String(err);
      return this.failed(phase, null, "error", message);
    }
    this.consecutiveFailures = 0;
    this.openMs = this.breaker.openMs;
    this.hot[phase][decision.action].inc();
    return { ok: true, decision };
  }

  private release(inst: PluginInstance) {
    if (this.closed) {
      this.live--;
      void inst.close();
    } else this.idle.push(inst);
  }

  private failed(
    phase: Phase,
    inst: PluginInstance | null,
    reason: FailureReason | "unavailable",
    message: string,
  ): Outcome {
    this.metrics.pluginCalls.labels(this.id, phase, "failure").inc();
    this.metrics.pluginFailures.labels(this.id, reason).inc();
    if (inst !== null) {
      // a guest that failed may hold half-updated state: never reuse it
      this.live--;
      void inst.close();
      this.metrics.pluginReplacements.labels(this.id).inc();
    }
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.breaker.failures) {
      this.openUntil = Date.now() + this.openMs;
      this.logger.error("plugin keeps failing; calls suspended", {
        phase,
        reason,
        error: message,
        failures: this.consecutiveFailures,
        suspendedMs: this.openMs,
      });
      this.openMs = Math.min(this.breaker.maxOpenMs, this.openMs * 2);
      this.consecutiveFailures = 0;
    } else this.logger.warn("plugin call failed", { phase, reason, error: message });
    return { ok: false, reason, message };
  }

  /** Releases idle instances; calls in flight finish on theirs, which are closed afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.isolated !== null) {
      await this.isolated.close();
      this.metrics.pluginIsolated.remove(this.id);
    }
    const idle = this.idle.splice(0);
    this.live -= idle.length;
    await Promise.all(idle.map(i => i.close()));
  }
}
