// Level-triggered reconcile: any change marks the snapshot dirty; after a short debounce one
// compile runs on the latest snapshot, publishes the config if its hash changed, and writes the
// statuses that differ. Failures are retried with capped exponential backoff and jitter (Pepr
// drops errors thrown in watch callbacks, so retrying is ours to do). One run at a time.
import type { CompiledConfig, ObjectRef } from "../../proxy/config/index.ts";
import { referencedSecrets } from "../../proxy/config/index.ts";
import type {
  CompileOptions,
  ConfigMapModuleRef,
  ObjectStatus,
  PluginModule,
} from "../compiler/index.ts";
import { compile, DEFAULT_CONTROLLER_NAME } from "../compiler/index.ts";
import { gatewayServices } from "./gateway-services.ts";
import type { GatewayService } from "./gateway-services.ts";
import type { ProxyReport } from "./plugin-status.ts";
import { withPluginReadiness } from "./plugin-status.ts";
import type { KubeObject, SnapshotKind, SnapshotStore } from "./snapshot-store.ts";
import { desiredStatus, holdProgrammed, jsonEqual, statusKey } from "./status.ts";

export type StatusKind = ObjectStatus["kind"];

export interface ControlPlaneIO {
  readPublished(): Promise<{ generation: number; hash: string } | undefined>;
  publishConfig(config: CompiledConfig): Promise<void>;
  writeStatus(
    kind: StatusKind,
    namespace: string | undefined,
    name: string,
    status: Record<string, unknown>,
  ): Promise<"written" | "gone">;
  // The live proxies, from their heartbeat Leases: the generation each serves (the oldest gates
  // Programmed) and the plugins of it that did not load (RautaPlugin Ready).
  proxies(): Promise<ProxyReport[]>;
  // Delivers the TLS Secrets the config references to the proxy (never through the ConfigMap).
  // `version` is the store's resourceVersion of each source Secret, to skip unchanged ones.
  syncCertificates?(
    refs: ObjectRef[],
    version: (ref: ObjectRef) => string | undefined,
  ): Promise<void>;
  // Reads the modules RautaPlugins' configMap sources name and copies them into the proxies'
  // namespace (plugin-modules.ts); the result goes to the compiler. `version` is the store's
  // resourceVersion of each source ConfigMap, to skip unchanged ones.
  syncPluginModules?(
    refs: ConfigMapModuleRef[],
    version: (ref: ConfigMapModuleRef) => string | undefined,
  ): Promise<PluginModule[]>;
  // Once the config no longer points at them: deletes the copies none of `modules` uses.
  prunePluginModules?(modules: PluginModule[]): Promise<void>;
  // Applies each accepted Gateway's Service and EndpointSlice (gateway-services.ts) and deletes
  // the ones we made that are no longer wanted.
  syncGatewayServices?(desired: GatewayService[]): Promise<void>;
}

// The configMap sources of the RautaPlugins in the store (one source set, as the compiler
// requires; anything else is an InvalidSource the compiler reports).
export function pluginModuleRefs(plugins: readonly KubeObject[]): ConfigMapModuleRef[] {
  const refs: ConfigMapModuleRef[] = [];
  for (const plugin of plugins) {
    const source = (plugin.spec as { source?: Record<string, unknown> } | undefined)?.source;
    const configMap = source?.configMap as { name?: string; key?: string } | undefined;
    if (!configMap?.name || Object.values(source ?? {}).filter(v => v !== undefined).length !== 1)
      continue;
    refs.push({
      namespace: plugin.metadata?.namespace ?? "default",
      name: configMap.name,
      key: configMap.key ?? "plugin.wasm",
    });
  }
  return refs;
}

export interface ReconcilerOptions {
  controllerName?: string;
  debounceMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  // How often to ask whether the proxy caught up while a Programmed condition is pending.
  ackPollMs?: number;
  now?: () => string;
  compileOptions?: (store: SnapshotStore) => Partial<CompileOptions>;
  log?: (
    level: "info" | "warn" | "error",
    message: string,
    fields?: Record<string, unknown>,
  ) => void;
}

export interface ReconcileOutcome {
  generation: number;
  hash: string;
  published: boolean;
  statusWrites: number;
}

/**
 * Keeps, per key, the first generation whose config carried the key's current fingerprint, and
 * forgets keys the config no longer has.
 */
function trackSince(
  versions: Map<string, { fingerprint: string; generation: number }>,
  fingerprints: ReadonlyMap<string, string>,
  generation: number,
): void {
  for (const [key, fingerprint] of fingerprints)
    if (versions.get(key)?.fingerprint !== fingerprint)
      versions.set(key, { fingerprint, generation });
  for (const key of [...versions.keys()]) if (!fingerprints.has(key)) versions.delete(key);
}

export class Reconciler {
  private readonly options: Required<Omit<ReconcilerOptions, "compileOptions">> &
    Pick<ReconcilerOptions, "compileOptions">;
  private published: { generation: number; hash: string } | undefined;
  private loadedPublished = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private failures = 0;
  private ackPolls = 0;
  private stopped = false;
  // The last compile and what it was made from: an acknowledgement poll (nothing changed but
  // the proxies' reports) reuses it instead of compiling again (~290 ms at 5,000 routes).
  private lastCompile: { key: string; result: ReturnType<typeof compile> } | undefined;
  /** what syncGatewayServices last applied (JSON), to skip unchanged sets */
  private lastServices: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly outcomes = new Set<(outcome: ReconcileOutcome) => void>();
  private readonly store: SnapshotStore;
  private readonly io: ControlPlaneIO;
  // Plugin id → its compiled version and the first generation that carried it: a proxy serving
  // an older generation has not loaded this version (RautaPlugin Ready). Starts over on restart
  // at the published generation, which only ever waits longer, never reports too early.
  private readonly pluginVersions = new Map<string, { fingerprint: string; generation: number }>();
  // Gateway (namespace/name) → the fingerprint of its listeners in the config (sockets, TLS,
  // plugins; not the routes on them, which have no Programmed of their own) and the first
  // generation that carried it: its Programmed waits for the proxies to serve that generation,
  // not the latest, so an untouched Gateway stays Programmed while other objects change.
  private readonly gatewayVersions = new Map<string, { fingerprint: string; generation: number }>();

  constructor(store: SnapshotStore, io: ControlPlaneIO, options: ReconcilerOptions = {}) {
    this.store = store;
    this.io = io;
    this.options = {
      controllerName: options.controllerName ?? DEFAULT_CONTROLLER_NAME,
      debounceMs: options.debounceMs ?? 5,
      initialBackoffMs: options.initialBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      ackPollMs: options.ackPollMs ?? 250,
      now: options.now ?? (() => new Date().toISOString().replace(/\.\d+Z$/, "Z")),
      log: options.log ?? (() => {}),
      compileOptions: options.compileOptions,
    };
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe = this.store.onChange(() => this.markDirty());
    this.markDirty();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
  }

  onOutcome(listener: (outcome: ReconcileOutcome) => void): () => void {
    this.outcomes.add(listener);
    return () => this.outcomes.delete(listener);
  }

  markDirty(delayMs = this.options.debounceMs): void {
    this.dirty = true;
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), delayMs);
  }

  private async drain(): Promise<void> {
    this.timer = undefined;
    if (this.running || this.stopped) return;
    this.dirty = false;
    let retryIn: number | undefined;
    this.running = this.reconcileOnce().then(
      outcome => {
        this.failures = 0;
        for (const listener of this.outcomes) listener(outcome);
      },
      (error: unknown) => {
        this.failures++;
        const backoff = Math.min(
          this.options.maxBackoffMs,
          this.options.initialBackoffMs * 2 ** (this.failures - 1),
        );
        retryIn = Math.round(backoff / 2 + (Math.random() * backoff) / 2);
        this.options.log("error", "reconcile failed; retrying", {
          error: error instanceof Error ? error.message : String(error),
          attempt: this.failures,
          retryInMs: retryIn,
        });
      },
    );
    await this.running;
    this.running = undefined;
    if (retryIn !== undefined) this.markDirty(retryIn);
    else if (this.dirty) this.markDirty();
  }

  async reconcileOnce(): Promise<ReconcileOutcome> {
    if (!this.loadedPublished) {
      this.published = await this.io.readPublished();
      this.loadedPublished = true;
    }
    // Plugin modules first: the compiler needs their digests, and a proxy must never see a
    // config naming a module copy it cannot read yet.
    const modules = await this.io.syncPluginModules?.(
      pluginModuleRefs(this.store.list("RautaPlugin")),
      ref => this.store.get("ConfigMap", ref.namespace, ref.name)?.metadata?.resourceVersion,
    );
    const candidate = (this.published?.generation ?? 0) + 1;
    const now = this.options.now();
    const key = `${this.store.version}|${candidate}|${JSON.stringify(modules ?? null)}`;
    let result: ReturnType<typeof compile>;
    const reused = this.lastCompile?.key === key;
    if (reused) result = this.lastCompile!.result;
    else {
      const snapshot = this.store.snapshot();
      if (modules) snapshot.pluginModules = modules;
      result = compile(snapshot, {
        ...this.options.compileOptions?.(this.store),
        controllerName: this.options.controllerName,
        generation: candidate,
        now,
      });
    }
    let { config } = result;
    let published = false;
    // Certificates first: a proxy must never see a listener whose certificate it cannot read yet.
    const refs = referencedSecrets(config);
    await this.io.syncCertificates?.(
      refs,
      ref => this.store.get("Secret", ref.namespace, ref.name)?.metadata?.resourceVersion,
    );
    if (this.published?.hash === config.hash) {
      config = { ...config, generation: this.published.generation };
    } else {
      await this.io.publishConfig(config);
      this.published = { generation: config.generation, hash: config.hash };
      published = true;
      this.options.log("info", "published config", {
        generation: config.generation,
        hash: config.hash,
      });
    }
    if (modules) await this.io.prunePluginModules?.(modules);
    // a reused compile carries the config these already track; kept only once published and
    // tracked, so a reconcile that failed before this point compiles again
    if (!reused) {
      this.trackPluginVersions(config);
      this.trackGatewayVersions(config);
      this.lastCompile = { key, result };
    }
    const proxies = await this.io.proxies();
    const served = proxies.flatMap(p => (p.generation === undefined ? [] : [p.generation]));
    const loaded = served.length > 0 ? Math.min(...served) : undefined;
    const gatewayCaughtUp = (gateway: string) =>
      loaded !== undefined &&
      loaded >= (this.gatewayVersions.get(gateway)?.generation ?? config.generation);
    const caughtUp = result.statuses.every(
      s => s.kind !== "Gateway" || gatewayCaughtUp(statusKey(s)),
    );
    const plugins = withPluginReadiness(holdProgrammed(result.statuses, gatewayCaughtUp), {
      configured: new Set(config.plugins.map(p => p.id)),
      since: new Map([...this.pluginVersions].map(([id, v]) => [id, v.generation])),
      generation: config.generation,
      proxies,
      now,
    });
    const statusWrites = await this.writeStatuses(plugins.statuses);
    if (this.io.syncGatewayServices) {
      const services = gatewayServices(this.store.list("Gateway"), result.statuses);
      const fingerprint = JSON.stringify(services);
      if (fingerprint !== this.lastServices) {
        // the Gateways are served either way: a failure here is logged and tried again at the
        // next reconcile, never held against the config or the statuses
        try {
          await this.io.syncGatewayServices(services);
          this.lastServices = fingerprint;
        } catch (error) {
          this.options.log("warn", "could not apply the Gateways' Services; will retry", {
            // the API client rejects with its response (status, body), not an Error
            error: error instanceof Error ? error.message : JSON.stringify(error),
          });
          if (!this.stopped) setTimeout(() => this.markDirty(0), 5_000).unref();
        }
      }
    }
    // Come back to flip Programmed (and plugins' Ready) once the proxies have loaded this
    // generation: soon at first, then backing off to once a second. A poll reads the proxies'
    // Leases and reuses the last compile, so it costs no compile.
    const pending = !caughtUp || !plugins.settled;
    this.ackPolls = pending && !published ? this.ackPolls + 1 : 0;
    if (pending && !this.stopped) {
      const delay = Math.min(1_000, this.options.ackPollMs * 2 ** Math.min(this.ackPolls, 5));
      setTimeout(() => this.markDirty(0), delay).unref();
    }
    return { generation: config.generation, hash: config.hash, published, statusWrites };
  }

  private trackPluginVersions(config: CompiledConfig): void {
    const fingerprints = new Map(config.plugins.map(p => [p.id, JSON.stringify(p)]));
    trackSince(this.pluginVersions, fingerprints, config.generation);
  }

  private trackGatewayVersions(config: CompiledConfig): void {
    const parts = new Map<string, unknown[]>();
    for (const listener of config.listeners) {
      const { virtualHosts: _routes, ...socket } = listener;
      for (const src of listener.sources) {
        const key = `${src.namespace}/${src.gateway}`;
        (parts.get(key) ?? parts.set(key, []).get(key)!).push(socket);
      }
    }
    const fingerprints = new Map([...parts].map(([key, list]) => [key, JSON.stringify(list)]));
    trackSince(this.gatewayVersions, fingerprints, config.generation);
  }

  private async writeStatuses(statuses: ObjectStatus[]): Promise<number> {
    let writes = 0;
    const compiledKeys = new Set<string>();
    const targets: Array<{
      kind: StatusKind;
      namespace: string | undefined;
      name: string;
      compiled: ObjectStatus | undefined;
    }> = [];
    for (const status of statuses) {
      const namespace = "namespace" in status ? status.namespace : undefined;
      compiledKeys.add(`${status.kind}/${namespace ?? ""}/${status.name}`);
      targets.push({ kind: status.kind, namespace, name: status.name, compiled: status });
    }
    // Routes we no longer attach to, and policies none of our Gateways use, still carry our old
    // entries: clear them.
    for (const kind of [
      "HTTPRoute",
      "GRPCRoute",
      "TLSRoute",
      "BackendTLSPolicy",
      "BackendTrafficPolicy",
      "ClientTrafficPolicy",
      "SecurityPolicy",
    ] as const)
      for (const object of this.store.list(kind)) {
        const key = `${kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`;
        if (!compiledKeys.has(key))
          targets.push({
            kind,
            namespace: object.metadata?.namespace,
            name: object.metadata!.name!,
            compiled: undefined,
          });
      }
    // One object that cannot be written must not hold back the others' statuses.
    const failed: string[] = [];
    for (const { kind, namespace, name, compiled } of targets) {
      const object = this.store.get(kind as SnapshotKind, namespace, name);
      if (!object) continue;
      const existing = object.status as Record<string, unknown> | undefined;
      const desired = desiredStatus(kind, existing, compiled, this.options.controllerName);
      if (desired === undefined || jsonEqual(desired, existing ?? {})) continue;
      try {
        const outcome = await this.io.writeStatus(kind, namespace, name, desired);
        if (outcome === "written") writes++;
        else {
          // its delete event never reached the store: drop it, which compiles again without it
          this.options.log("warn", "object deleted without a watch event; forgetting it", {
            kind,
            namespace,
            name,
          });
          this.store.forget(kind as SnapshotKind, namespace, name);
        }
      } catch (error) {
        failed.push(error instanceof Error ? error.message : JSON.stringify(error));
      }
    }
    if (failed.length > 0)
      throw new Error(`${failed.length} status write(s) failed: ${failed.join("; ")}`);
    return writes;
  }
}
