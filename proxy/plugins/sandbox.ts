// One plugin instance: an Extism plugin (in-thread, no WASI capabilities unless granted) over a
// module compiled once per digest, with RAUTA's host functions, run one call at a time under the
// sandbox's limits. A call that traps, runs out of fuel (the time limit, metered by the code
// injected at load: instrument.ts), outgrows its memory or answers too much is a failure with a
// reason; the caller discards the instance after any failure, because a trapped guest's memory
// may be half-updated.
import type { Plugin as ExtismPlugin } from "@extism/extism";
import {
  CallState,
  HOST_NAMESPACE,
  HostLimitError,
  NO_CALL,
  checkOutputSize,
  hostFunctions,
  setOutput,
} from "./host-functions.ts";
import { CallInput } from "./call-input.ts";
import type { HostServices } from "./host-functions.ts";
import type { Phase } from "./abi.ts";
import { REFUEL_IMPORT, SANDBOX_NAMESPACE } from "./instrument.ts";

export type FailureReason = "timeout" | "memory" | "trap" | "error" | "output";

export type CallResult =
  | { ok: true; output: Uint8Array; ms: number }
  | { ok: false; reason: FailureReason; message: string; ms: number };

export interface CompiledPlugin {
  module: WebAssembly.Module;
  /** the (instrumented) module's bytes, for isolation in another process */
  bytes?: Uint8Array;
  digest: string;
  /** the module's function exports (before instrumentation) */
  exports: ReadonlySet<string>;
  /** imports wasi_snapshot_preview1 (Go, Rust std) */
  wasi: boolean;
  /** fuel metering and the rc wrappers were injected (instrument.ts) */
  metered: boolean;
  maxMemoryBytes: number;
  /**
   * The module reads its input through an Extism block (it imports input_offset), so the input
   * must be stored in Extism's memory; otherwise the host serves input_length/input_load_* from
   * the call's own buffer and nothing is copied.
   */
  blockInput?: boolean;
}

export interface SandboxLimits {
  /** wall-clock limit of one call, checked each time a fuel slice runs out */
  timeoutMs: number;
  /** fuel units between two wall-clock checks; Infinity when the module is not metered */
  fuel: number;
  outputCapBytes: number;
}

export interface InstanceOptions {
  /** spec.config as JSON: Extism config key "config" */
  configJson: string;
  services: HostServices;
  /** explicit grants of the RautaPlugin; none by default */
  allowedHosts?: string[];
  allowedPaths?: Record<string, string>;
}

const PHASE_EXPORT: Record<Phase, string> = { request: "on_request", response: "on_response" };

// Loaded on first use: a proxy whose config has no plugin never loads Extism (nor node:wasi).
let extismModule: Promise<typeof import("@extism/extism")> | null = null;
const loadExtism = () => (extismModule ??= import("@extism/extism"));

interface Exports {
  memory?: WebAssembly.Memory;
  __rauta_fuel?: WebAssembly.Global;
  __rauta_rc?: WebAssembly.Global;
  [name: string]: unknown;
}

export class PluginInstance {
  readonly plugin: CompiledPlugin;
  private readonly extism: ExtismPlugin;
  private readonly state: CallState;
  private readonly exports: Exports;
  /** calls made on this instance */
  calls = 0;
  private sinceReset = 0;
  // the phases' entry points, looked up once (metered modules: the __rauta_call_ wrappers)
  private readonly onRequest: (() => unknown) | null;
  private readonly onResponse: (() => unknown) | null;

  private constructor(
    plugin: CompiledPlugin,
    extism: ExtismPlugin,
    state: CallState,
    exports: Exports,
  ) {
    this.plugin = plugin;
    this.extism = extism;
    this.state = state;
    this.exports = exports;
    const entry = (name: string) => {
      const fn = plugin.metered ? exports[`__rauta_call_${name}`] : exports[name];
      return typeof fn === "function" ? (fn as () => unknown) : null;
    };
    this.onRequest = entry("on_request");
    this.onResponse = entry("on_response");
  }

  static async create(plugin: CompiledPlugin, opts: InstanceOptions): Promise<PluginInstance> {
    const state = new CallState();
    const host = hostFunctions(state, opts.services);
    const sandbox = {
      // the metered code's fuel ran out: another slice while the call is within its time limit
      [REFUEL_IMPORT]: (): bigint => {
        if (performance.now() > state.deadline) {
          state.outOfTime = true;
          return -1n;
        }
        return state.slice;
      },
    };
    const { createPlugin } = await loadExtism();
    const extism = await createPlugin(
      { wasm: [{ module: plugin.module, name: "main" }] },
      {
        useWasi: plugin.wasi,
        enableWasiOutput: false,
        runInWorker: false,
        // Extism's config_get traps on an empty value: no key rather than ""
        config: opts.configJson === "" ? {} : { config: opts.configJson },
        allowedHosts: opts.allowedHosts ?? [],
        allowedPaths: opts.allowedPaths ?? {},
        functions: {
          [HOST_NAMESPACE]: host,
          [SANDBOX_NAMESPACE]: sandbox,
          ...(plugin.blockInput ? {} : { [EXTISM_ENV]: kernelOverrides(state) }),
        },
        logger: silentConsole,
      },
    );
    let instance: WebAssembly.Instance;
    try {
      instance = await extism.getInstance("main");
    } catch (err) {
      // a WASI instance holds /dev/null handles that Node 26 refuses to collect unclosed
      await extism.close().catch(() => {});
      throw err;
    }
    const exports = instance.exports as unknown as Exports;
    state.memory = exports.memory ?? null;
    return new PluginInstance(plugin, extism, state, exports);
  }

  has(phase: Phase): boolean {
    return this.plugin.exports.has(PHASE_EXPORT[phase]);
  }

  /**
   * Runs one phase on `input`; never throws. Synchronous unless the module reads its input from
   * an Extism block (blockInput): the host answers Extism's input, output and error functions
   * itself (kernelOverrides), so the export is simply called, with no promise in between.
   */
  call(
    phase: Phase,
    input: CallInput | Uint8Array,
    limits: SandboxLimits,
  ): CallResult | Promise<CallResult> {
    const ci = input instanceof Uint8Array ? CallInput.ofBytes(input) : input;
    return this.plugin.blockInput
      ? this.callThroughExtism(phase, ci, limits)
      : this.callDirect(phase, ci, limits);
  }

  private begin(input: CallInput, limits: SandboxLimits): void {
    const state = this.state;
    state.call = input;
    state.output = null;
    state.error = null;
    state.outputCap = limits.outputCapBytes;
    const slice = sliceOf(limits.fuel);
    state.slice = slice;
    state.outOfTime = false;
    const fuel = this.exports.__rauta_fuel;
    if (fuel !== undefined) fuel.value = slice;
    const rc = this.exports.__rauta_rc;
    if (rc !== undefined) rc.value = 0;
    this.calls++;
  }

  private callDirect(phase: Phase, input: CallInput, limits: SandboxLimits): CallResult {
    const name = PHASE_EXPORT[phase];
    this.begin(input, limits);
    const t0 = performance.now();
    this.state.deadline = t0 + limits.timeoutMs;
    let failure: { reason: FailureReason; message: string } | null = null;
    let code: unknown = 0;
    try {
      const fn = phase === "request" ? this.onRequest : this.onResponse;
      if (fn === null) throw new Error(`the module does not export ${name}`);
      code = fn();
      const rc = this.exports.__rauta_rc;
      if (rc !== undefined) code = rc.value;
    } catch (err) {
      failure = this.classify(err, this.exports.__rauta_fuel);
    } finally {
      // Free the blocks a call allocated (Extism 1.0.3 never does; reset runs synchronously).
      // Most calls allocate none: reset after one that called alloc, and every 64 calls for
      // what Extism allocates internally (config_get, var_get) without passing through alloc.
      if (this.state.allocated || ++this.sinceReset >= 64) {
        this.state.allocated = false;
        this.sinceReset = 0;
        void this.extism.reset();
      }
    }
    this.state.call = NO_CALL;
    if (failure === null && this.state.error !== null)
      failure = { reason: "error", message: `Plugin-originated error: ${this.state.error}` };
    if (failure === null && typeof code === "number" && code !== 0)
      failure = { reason: "error", message: `${name} returned ${code}` };
    return this.finish(name, failure, this.state.output ?? EMPTY, t0, limits);
  }

  private async callThroughExtism(
    phase: Phase,
    call: CallInput,
    limits: SandboxLimits,
  ): Promise<CallResult> {
    const input = call.bytes();
    const name = PHASE_EXPORT[phase];
    this.begin(call, limits);
    const state = this.state;
    const t0 = performance.now();
    state.deadline = t0 + limits.timeoutMs;
    let out: Uint8Array = EMPTY;
    let failure: { reason: FailureReason; message: string } | null = null;
    try {
      const target = this.plugin.metered ? `__rauta_call_${name}` : name;
      // Extism 1.0.3 stores a view's whole underlying buffer: input_length would report the
      // buffer's size, and the guest would read garbage past the input
      const exact =
        input.byteOffset === 0 && input.byteLength === input.buffer.byteLength
          ? input
          : input.slice();
      const res = await this.extism.call(["main", target], exact);
      out = state.output ?? (res === null ? EMPTY : res.bytes());
      const rc = this.exports.__rauta_rc;
      const code = rc === undefined ? 0 : (rc.value as number);
      if (code !== 0) failure = { reason: "error", message: `${name} returned ${code}` };
    } catch (err) {
      failure = this.classify(err, this.exports.__rauta_fuel);
    } finally {
      // Extism 1.0.3 never frees a call's blocks: without a reset the 16,383rd call fails
      await this.extism.reset();
      state.call = NO_CALL;
    }
    return this.finish(name, failure, out, t0, limits);
  }

  private finish(
    name: string,
    failure: { reason: FailureReason; message: string } | null,
    out: Uint8Array,
    t0: number,
    limits: SandboxLimits,
  ): CallResult {
    const ms = performance.now() - t0;
    // A metered call that completed was within its limit at every fuel slice: wall time beyond
    // the limit came from outside the guest (a GC pause, the machine being busy, a first-call
    // compile) and is no reason to fail a request that already has its answer. An unmetered
    // module has no slices: its wall time is all there is to judge.
    if (failure === null && !this.plugin.metered && ms > limits.timeoutMs)
      failure = {
        reason: "timeout",
        message: `${name} took ${ms.toFixed(1)} ms (limit ${limits.timeoutMs} ms)`,
      };
    if (failure !== null) return { ok: false, ...failure, ms };
    return { ok: true, output: out, ms };
  }

  private classify(
    err: unknown,
    fuel: WebAssembly.Global | undefined,
  ): { reason: FailureReason; message: string } {
    if (this.state.outOfTime || (fuel !== undefined && (fuel.value as bigint) < 0n))
      return { reason: "timeout", message: "stopped at its time limit" };
    if (err instanceof HostLimitError) return { reason: err.reason, message: err.message };
    const message = err instanceof Error ? err.message : String(err);
    const mem = this.state.memory;
    // A guest that hits its cap sees memory.grow return -1 and aborts. Guest allocators grow by
    // doubling or by large arenas, so a guest that traps holding at least half its cap is taken
    // to have run out of memory (the reason is for metrics and the message; either way the call
    // failed and the instance is replaced).
    const cap = this.plugin.maxMemoryBytes;
    if (mem !== null && cap > 0 && mem.buffer.byteLength * 2 >= cap)
      return {
        reason: "memory",
        message: `trapped with ${(mem.buffer.byteLength / 1048576).toFixed(1)} of ${(cap / 1048576).toFixed(1)} MiB of memory in use: out of memory (${message})`,
      };
    if (err instanceof WebAssembly.RuntimeError) return { reason: "trap", message };
    if (message.startsWith("Plugin-originated error")) return { reason: "error", message };
    return { reason: "trap", message };
  }

  async close(): Promise<void> {
    try {
      await this.extism.close();
    } catch {
      // nothing left to release
    }
  }
}

const EMPTY = new Uint8Array(0);

// A call's fuel slice as the i64 the guest's global holds; every call of a plugin uses the same
// one, and a BigInt conversion per call is measurable at these call costs.
let lastFuel = 0;
let lastSlice = 0n;
function sliceOf(fuel: number): bigint {
  if (fuel !== lastFuel) {
    lastFuel = fuel;
    lastSlice = Number.isFinite(fuel) ? BigInt(Math.floor(fuel)) : 0n;
  }
  return lastSlice;
}

const EXTISM_ENV = "extism:host/env";
const OFFSET_MASK = 0xffffffffffffn;

// Extism's kernel functions that tie a call to its call stack, answered by the host so a call
// needs no Extism call frame: the input from the call's buffer (standard PDKs read it with
// these; RAUTA's SDKs with rauta:host input_copy, no copy into an Extism block), and the output
// and error a standard PDK sets through a block, read at once. Everything else (alloc, config,
// variables) stays Extism's.
interface KernelContext {
  read(addr: bigint): DataView | null;
  alloc(n: bigint | number): bigint;
}

function blockBytes(ctx: unknown, addr: bigint, length?: bigint): Uint8Array {
  const block = (ctx as KernelContext).read(addr);
  if (block === null) throw new HostLimitError("error", "output_set: not an Extism block");
  const n = length === undefined ? block.byteLength : Number(length);
  if (n > block.byteLength) throw new HostLimitError("error", "output_set: length past its block");
  return new Uint8Array(block.buffer, block.byteOffset, n);
}

function kernelOverrides(state: CallState) {
  return {
    input_length: (): bigint => BigInt(state.inputBytes().length),
    input_load_u8: (_ctx: unknown, addr: bigint): number =>
      state.inputBytes()[Number(addr & OFFSET_MASK)] ?? 0,
    input_load_u64: (_ctx: unknown, addr: bigint): bigint => {
      const i = Number(addr & OFFSET_MASK);
      const b = state.inputBytes();
      if (i + 8 <= b.length)
        return new DataView(b.buffer, b.byteOffset + i, 8).getBigUint64(0, true);
      let v = 0n;
      for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(b[i + k] ?? 0);
      return v;
    },
    // Extism's own, noted so a call that allocated nothing needs no reset afterwards
    alloc: (ctx: unknown, n: bigint): bigint => {
      state.allocated = true;
      return (ctx as KernelContext).alloc(n);
    },
    output_set: (ctx: unknown, addr: bigint, length: bigint): void => {
      checkOutputSize(state, Number(length));
      setOutput(state, blockBytes(ctx, addr, length));
    },
    error_set: (ctx: unknown, addr: bigint): void => {
      state.error = utf8.decode(blockBytes(ctx, addr).subarray(0, 4096));
    },
  };
}

const utf8 = new TextDecoder();

const noop = () => {};
const silentConsole = {
  log: noop,
  info: noop,
  debug: noop,
  warn: noop,
  error: noop,
  trace: noop,
} as unknown as Console;
