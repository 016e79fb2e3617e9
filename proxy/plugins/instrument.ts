// Load-time sandboxing of a plugin module, as the serving process sees it: the rewrite's contract
// (exported globals, wrappers, fuel model, errors) and instrumentCached(), which rewrites a module
// once per digest in a child process and keeps the result on disk. The rewrite itself
// (instrument(), binaryen) lives in instrument-worker.ts so that importing this module never
// loads binaryen (~85 MB of RSS that would stay for the life of the process).
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { fork } from "node:child_process";
import { packagePath } from "../runtime/package-root.ts";
import type { WasmImport } from "./wasm-sections.ts";

/** Part of every cache key: bump it whenever the rewrite's output changes. */
export const INSTRUMENT_VERSION = 3;

/** Exported mutable i64: the fuel left. The host sets it before a call and reads it after. */
export const FUEL_GLOBAL = "__rauta_fuel";
/**
 * The import a metered module calls when its fuel runs out: `() -> i64`, the next slice of fuel,
 * or a negative number once the host's wall-clock time limit has passed (the module then traps).
 * Fuel slices keep the time limit a wall-clock limit: fuel alone stops a loop at a point that
 * depends on the code and on how busy the machine is.
 */
export const SANDBOX_NAMESPACE = "rauta:sandbox";
export const REFUEL_IMPORT = "refuel";
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
 * charges sit where control can come back or join: function entries (recursion) and loop headers
 * (back-edges) bound every execution; if arms and the code after a branch target keep the count
 * close to what runs. Each charge is weighted by the straight-line code it covers, so fuel
 * approximates instructions executed rather than iterations. Charging only function entries and
 * loop headers overcharged Go 30x: Go compiles every jump to a branch back to one loop that
 * dispatches over the whole function, so each jump paid for all of it.
 */
export const FUEL_MODEL =
  "nodes-v2: fuel -= the number of instructions (binaryen expression nodes; blocks and nops are " +
  "free) of the straight-line code a charge point covers, up to the next charge point, nested loops " +
  "excluded; a call of a leaf function (no loop, no call into the module, not in a table, at most " +
  "256 instructions) adds the leaf's whole size there, and the leaf has no charge of its own. " +
  "Charge points: every other function entry and loop header (minimum 1), the code after every " +
  "branch target (block end), and every if arm of more than 16 instructions (smaller arms are " +
  "charged with the code before the if). Code skipped by an early branch is still charged, so it " +
  "is an upper bound of the instructions executed. A charge traps (unreachable) once fuel < 0: " +
  "after a trap, fuel < 0 means out of fuel. Host calls and memory.copy/fill lengths are not metered.";

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

// ---- child protocol (instrument-worker.ts answers one job per process) ----

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

const WORKER_PATH = packagePath("proxy/plugins/instrument-worker.ts");

/**
 * A fresh child process per job: when it exits, binaryen's memory goes with it. (A worker
 * thread was measured to leave the serving process 70-130 MB larger for good: the allocator
 * keeps what the thread used.)
 */
function instrumentInWorker(bytes: Uint8Array, opts: InstrumentOptions): Promise<InstrumentResult> {
  stats.workerRuns++;
  const job: InstrumentJob = { rautaInstrumentJob: 1, bytes, opts };
  return new Promise((resolve, reject) => {
    const child = fork(WORKER_PATH, [], {
      serialization: "advanced",
      execArgv: [],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      env: { ...process.env, RAUTA_INSTRUMENT_CHILD: "1", MALLOC_ARENA_MAX: "2" },
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    child.once("message", (reply: WorkerReply) => {
      settle(() => {
        if (reply.ok) resolve({ ...reply.result, bytes: new Uint8Array(reply.result.bytes) });
        else if (reply.reason) reject(new InstrumentError(reply.reason, reply.message));
        else reject(new Error(`instrumentation failed: ${reply.message}`));
      });
      child.kill();
    });
    child.once("error", err => settle(() => reject(err)));
    child.once("exit", code =>
      settle(() =>
        reject(
          new Error(
            `the instrumentation process exited (code ${code}) without a result${stderr ? `: ${stderr.trim()}` : ""}`,
          ),
        ),
      ),
    );
    child.send(job);
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
 * one file; a miss runs the rewrite in a child process and stores it. Concurrent calls for the
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
