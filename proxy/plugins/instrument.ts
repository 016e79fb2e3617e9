// Load-time sandboxing of a plugin module, as the serving process sees it: the rewrite's contract
// (exported globals, wrappers, fuel model, errors) and instrumentCached(), which rewrites a module
// once per digest in a worker thread and keeps the result on disk. The rewrite itself
// (instrument(), binaryen) lives in instrument-worker.ts so that importing this module never
// loads binaryen (~85 MB of RSS that would stay for the life of the process).
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { WasmImport } from "./wasm-sections.ts";

/** Part of every cache key: bump it whenever the rewrite's output changes. */
export const INSTRUMENT_VERSION = 1;

/** Exported mutable i64: the fuel left. The host sets it before a call and reads it after. */
export const FUEL_GLOBAL = "__rauta_fuel";
/** Exported mutable i32: what the last `__rauta_call_<name>` wrapper's target returned. */
export const RC_GLOBAL = "__rauta_rc";
/** Export names the proxy adds; a plugin exporting one of them is refused. */
export const RESERVED_PREFIX = "__rauta_";
export const ABI_EXPORTS = ["on_request", "on_response"] as const;
export type AbiExport = (typeof ABI_EXPORTS)[number];
export const callExportName = (name: string) => `${RESERVED_PREFIX}call_${name}`;

/**
 * The fuel a fresh instance starts with: start functions and initializers run at instantiation,
 * before the host can set a per-call budget (1e10 units is seconds of work, still bounded).
 */
export const INITIAL_FUEL = 10_000_000_000n;

/**
 * How fuel is counted. Charging every instruction would cost more than the work it meters, so
 * charges sit where control can come back: each function entry (recursion) and each loop header
 * (back-edges), which bounds every execution. A charge is weighted by the code it covers, so that
 * fuel approximates instructions executed rather than iterations.
 */
export const FUEL_MODEL =
  "nodes-v1: at every function entry and every loop header, fuel -= the number of instructions " +
  "(binaryen expression nodes; blocks and nops are free) in the code that point covers: the function " +
  "body outside its loops, or one pass over the loop body outside nested loops (minimum 1). Both arms " +
  "of an if and the code after an early exit are counted, so it is an upper bound on the instructions " +
  "executed between two charges. The charge traps (unreachable) once fuel < 0: after a trap, " +
  "fuel < 0 means out of fuel. Host calls and memory.copy/fill lengths are not metered.";

export type InstrumentErrorReason =
  | "InvalidModule"
  | "MissingExport"
  | "MemoryTooLarge"
  | "ImportedMemory"
  | "MultipleMemories";

/** A module the proxy refuses to run; the message says what to change. */
export class InstrumentError extends Error {
  readonly reason: InstrumentErrorReason;
  constructor(reason: InstrumentErrorReason, message: string) {
    super(message);
    this.name = "InstrumentError";
    this.reason = reason;
  }
}

export interface InstrumentOptions {
  /** linear-memory cap in 64 KiB pages */
  maxMemoryPages: number;
}

export interface InstrumentResult {
  /** the rewritten module */
  bytes: Uint8Array;
  /** the original module's function exports */
  exports: string[];
  imports: WasmImport[];
  /** the plugin's memory after the cap (0/0 when it defines none) */
  memory: { initialPages: number; maxPages: number };
  /** FUEL_MODEL of the rewrite that produced bytes */
  fuelModel: string;
}

const MAX_PAGES_32 = 65536;

export function checkOptions(opts: InstrumentOptions) {
  const p = opts.maxMemoryPages;
  if (!Number.isInteger(p) || p < 0 || p > MAX_PAGES_32)
    throw new RangeError(
      `maxMemoryPages must be an integer between 0 and ${MAX_PAGES_32}, got ${p}`,
    );
}

// ---- worker protocol (instrument-worker.ts answers one job per thread) ----

export interface InstrumentJob {
  rautaInstrumentJob: 1;
  bytes: Uint8Array;
  opts: InstrumentOptions;
}

export type WorkerReply =
  | { ok: true; result: InstrumentResult }
  | { ok: false; reason?: InstrumentErrorReason; message: string };

export function isInstrumentJob(data: unknown): data is InstrumentJob {
  return (
    typeof data === "object" &&
    data !== null &&
    (data as Partial<InstrumentJob>).rautaInstrumentJob === 1
  );
}

const WORKER_URL = new URL("./instrument-worker.ts", import.meta.url);

/** A fresh thread per job: when it exits, binaryen's heap goes with it. */
function instrumentInWorker(bytes: Uint8Array, opts: InstrumentOptions): Promise<InstrumentResult> {
  stats.workerRuns++;
  const job: InstrumentJob = { rautaInstrumentJob: 1, bytes, opts };
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: job });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    worker.once("message", (reply: WorkerReply) => {
      settle(() => {
        if (reply.ok) resolve(reply.result);
        else if (reply.reason) reject(new InstrumentError(reply.reason, reply.message));
        else reject(new Error(`instrumentation failed: ${reply.message}`));
      });
      // the reply is the whole job; do not wait for the thread to wind down on its own
      void worker.terminate();
    });
    worker.once("error", err => settle(() => reject(err)));
    worker.once("exit", code =>
      settle(() =>
        reject(new Error(`the instrumentation worker exited (code ${code}) without a result`)),
      ),
    );
  });
}

// ---- disk cache ----

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.RAUTA_CACHE_DIR;
  return base ? join(base, "plugins") : join(homedir(), ".cache", "rauta", "plugins");
}

const stats = { hits: 0, workerRuns: 0, writeErrors: 0 };

/** Counters since the process started: cache hits, worker runs (misses), failed cache writes. */
export function instrumentCacheStats(): Readonly<typeof stats> {
  return { ...stats };
}

// Entry layout: MAGIC, u32 LE header length, header JSON, the instrumented module.
const MAGIC = new TextEncoder().encode("RAUTAIW\n");

interface EntryHeader {
  version: number;
  sha256: string;
  exports: string[];
  imports: WasmImport[];
  memory: InstrumentResult["memory"];
  fuelModel: string;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function encodeEntry(r: InstrumentResult): Uint8Array {
  const header: EntryHeader = {
    version: INSTRUMENT_VERSION,
    sha256: sha256(r.bytes),
    exports: r.exports,
    imports: r.imports,
    memory: r.memory,
    fuelModel: r.fuelModel,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + json.length + r.bytes.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length, true);
  out.set(json, MAGIC.length + 4);
  out.set(r.bytes, MAGIC.length + 4 + json.length);
  return out;
}

/** null for anything that is not an intact entry of this version: the caller rebuilds it. */
function decodeEntry(buf: Uint8Array): InstrumentResult | null {
  const start = MAGIC.length + 4;
  if (buf.length < start || MAGIC.some((b, i) => buf[i] !== b)) return null;
  const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(
    MAGIC.length,
    true,
  );
  if (len > buf.length - start) return null;
  let h: Partial<EntryHeader>;
  try {
    h = JSON.parse(
      new TextDecoder().decode(buf.subarray(start, start + len)),
    ) as Partial<EntryHeader>;
  } catch {
    return null;
  }
  // a copy: a Buffer's slice() would be a view, and callers get a plain Uint8Array either way
  const bytes = new Uint8Array(buf.subarray(start + len));
  if (
    h.version !== INSTRUMENT_VERSION ||
    h.sha256 !== sha256(bytes) ||
    !Array.isArray(h.exports) ||
    !Array.isArray(h.imports) ||
    typeof h.memory?.initialPages !== "number" ||
    typeof h.memory.maxPages !== "number" ||
    typeof h.fuelModel !== "string"
  )
    return null;
  return {
    bytes,
    exports: h.exports,
    imports: h.imports,
    memory: h.memory,
    fuelModel: h.fuelModel,
  };
}

/** Write-then-rename, so a reader sees a whole entry or none, even across processes. */
async function writeEntry(file: string, data: Uint8Array) {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

const inflight = new Map<string, Promise<InstrumentResult>>();

/**
 * instrument() once per (module digest, maxMemoryPages, INSTRUMENT_VERSION): a cache hit reads
 * one file; a miss runs the rewrite in a worker thread and stores it. Concurrent calls for the
 * same key share one job (and one result object: do not mutate it). The cache directory must be
 * writable only by the proxy: an entry is trusted, so whoever can write one can run unmetered code.
 */
export async function instrumentCached(
  bytes: Uint8Array,
  opts: InstrumentOptions,
  cacheDir: string = defaultCacheDir(),
): Promise<InstrumentResult> {
  checkOptions(opts);
  const key = `${sha256(bytes)}-${opts.maxMemoryPages}p-v${INSTRUMENT_VERSION}`;
  const pending = inflight.get(key);
  if (pending) return pending;
  const job = (async () => {
    const file = join(cacheDir, `${key}.rauta-wasm`);
    const cached = await readFile(file).then(decodeEntry, () => null);
    if (cached) {
      stats.hits++;
      return cached;
    }
    const result = await instrumentInWorker(bytes, opts);
    try {
      await mkdir(cacheDir, { recursive: true });
      await writeEntry(file, encodeEntry(result));
    } catch {
      // a cache that cannot be written (read-only filesystem) costs a rewrite per start, not a plugin
      stats.writeErrors++;
    }
    return result;
  })();
  inflight.set(key, job);
  try {
    return await job;
  } finally {
    inflight.delete(key);
  }
}
