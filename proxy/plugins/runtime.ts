// The plugin runtime of one proxy process: turns a config's plugins into LoadedPlugins before the
// config is swapped in (off the request path), keeps the previous version of a plugin serving
// when its new module or config does not load, and reports every load problem (logged, counted,
// returned as the apply's problems so the heartbeat can carry them to RautaPlugin status).
import type { Plugin } from "../config/schema.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import { LoadedPlugin } from "./loaded-plugin.ts";
import type { BreakerOptions } from "./loaded-plugin.ts";
import { KeyCache, RateLimitStore } from "./host-functions.ts";
import { ModuleError, ModuleStore } from "./modules.ts";
import type { ModuleStoreOptions } from "./modules.ts";

export interface PluginProblem {
  plugin: string;
  reason: string;
  message: string;
  /** the digest still serving instead, when an earlier version loaded */
  serving?: string;
}

export interface PreparedPlugins {
  /** plugin id → what serves it in the new generation (absent: nothing could load) */
  plugins: Map<string, LoadedPlugin>;
  problems: PluginProblem[];
}

export interface PluginRuntimeOptions extends ModuleStoreOptions {
  metrics: Metrics;
  logger: Logger;
  breaker?: BreakerOptions;
}

export class PluginRuntime {
  readonly modules: ModuleStore;
  private readonly opts: PluginRuntimeOptions;
  /** the last version of each plugin id that loaded, with the spec it loaded from */
  private readonly lastGood = new Map<string, { fingerprint: string; loaded: LoadedPlugin }>();
  /** rate-limit buckets and parsed keys outlive generations: a config change keeps counters */
  private readonly rateLimits = new Map<string, RateLimitStore>();
  private readonly keys = new KeyCache();

  constructor(opts: PluginRuntimeOptions) {
    this.opts = opts;
    this.modules = new ModuleStore(opts);
  }

  async prepare(specs: Plugin[]): Promise<PreparedPlugins> {
    const plugins = new Map<string, LoadedPlugin>();
    const problems: PluginProblem[] = [];
    await Promise.all(
      specs.map(async spec => {
        const fingerprint = JSON.stringify(spec);
        const prev = this.lastGood.get(spec.id);
        if (prev !== undefined && prev.fingerprint === fingerprint) {
          plugins.set(spec.id, prev.loaded);
          return;
        }
        try {
          const loaded = await this.load(spec);
          plugins.set(spec.id, loaded);
        } catch (err) {
          const reason = err instanceof ModuleError ? err.reason : "LoadFailed";
          const message = (err as Error).message;
          this.opts.metrics.pluginLoadErrors.labels(spec.id, reason).inc();
          const problem: PluginProblem = { plugin: spec.id, reason, message };
          if (prev !== undefined) {
            // a broken new version never replaces one that works
            plugins.set(spec.id, prev.loaded);
            problem.serving = prev.loaded.compiled.digest;
          }
          problems.push(problem);
          this.opts.logger.error("plugin did not load", {
            plugin: spec.id,
            reason,
            error: message,
            keepsServing: problem.serving ?? null,
          });
        }
      }),
    );
    return { plugins, problems };
  }

  private async load(spec: Plugin): Promise<LoadedPlugin> {
    const { bytes, digest } = await this.modules.bytesOf(spec.source, spec.digest);
    const compiled = await this.modules.compile(bytes, digest, spec.limits.memoryMiB);
    let rl = this.rateLimits.get(spec.id);
    if (rl === undefined) {
      rl = new RateLimitStore();
      this.rateLimits.set(spec.id, rl);
    }
    const loaded = new LoadedPlugin(spec, compiled, {
      metrics: this.opts.metrics,
      logger: this.opts.logger,
      rateLimits: rl,
      keys: this.keys,
      ...(this.opts.breaker ? { breaker: this.opts.breaker } : {}),
    });
    try {
      await loaded.warm();
    } catch (err) {
      throw new ModuleError(
        "LoadFailed",
        `the module does not instantiate: ${(err as Error).message}`,
      );
    }
    return loaded;
  }

  /**
   * After a swap: the new generation's plugins become the last good ones; versions nothing
   * serves any more are closed once the previous generation's requests are done (`later`).
   */
  commit(next: PreparedPlugins, later: (fn: () => void) => void): void {
    const keep = new Set(next.plugins.values());
    const retired: LoadedPlugin[] = [];
    for (const [id, entry] of this.lastGood) {
      if (!keep.has(entry.loaded)) retired.push(entry.loaded);
      if (!next.plugins.has(id)) {
        this.lastGood.delete(id);
        this.rateLimits.delete(id);
      }
    }
    for (const [id, loaded] of next.plugins)
      this.lastGood.set(id, { fingerprint: JSON.stringify(loaded.spec), loaded });
    if (retired.length) later(() => void Promise.all(retired.map(p => p.close())));
  }

  /** Plugins a refused config prepared but will never serve. */
  async discard(prepared: PreparedPlugins): Promise<void> {
    const live = new Set([...this.lastGood.values()].map(e => e.loaded));
    await Promise.all([...prepared.plugins.values()].filter(p => !live.has(p)).map(p => p.close()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.lastGood.values()].map(e => e.loaded.close()));
    this.lastGood.clear();
  }
}
