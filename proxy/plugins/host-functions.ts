// The `rauta:host` imports of ABI version 1 (plugins-sdk/ABI.md). They read and write the
// guest's linear memory directly (no Extism blocks, nothing to free), and every one of them is
// bounded: copies are checked against the memory's size, output against its cap, logging is
// rate-limited, and the rate-limit store holds a bounded number of keys.
import crypto from "node:crypto";
import type { KeyObject } from "node:crypto";
import { CACHE_MAX_KEY_BYTES } from "./plugin-cache.ts";
import { CallInput } from "./call-input.ts";
import { headerNameAt, latin1At, writeUtf8 } from "./ascii.ts";
import type { PluginCache } from "./plugin-cache.ts";

export const HOST_NAMESPACE = "rauta:host";

/** Thrown inside a host function: the guest traps and the call fails with this reason. */
export class HostLimitError extends Error {
  readonly reason: "memory" | "output" | "error";
  constructor(reason: "memory" | "output" | "error", message: string) {
    super(message);
    this.reason = reason;
  }
}

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: LogLevel[] = ["debug", "info", "warn", "error"];

export interface HostServices {
  log(level: LogLevel, message: string): void;
  rateLimits: RateLimitStore;
  /** verification keys parsed once (PEM or JWK JSON text → KeyObject) */
  keys: KeyCache;
  /** cache_get / cache_set, one per plugin version */
  cache: PluginCache;
  now(): number;
}

/** The input outside a call (a guest's start function may ask for its length). */
export const NO_CALL = CallInput.ofBytes(new Uint8Array(0));

/** What one instance's host functions work on; the runtime sets it around every call. */
export class CallState {
  memory: WebAssembly.Memory | null = null;
  /** the current call's input; its ABI bytes are only encoded if the guest reads them */
  call: CallInput = NO_CALL;
  /** The ABI buffer of the current call (input_length, input_copy). */
  inputBytes(): Uint8Array {
    return this.call.bytes();
  }
  /** a block was allocated in Extism's memory since the last reset (sandbox.ts) */
  allocated = true;
  /** set by Extism's error_set (answered by the host, sandbox.ts): the call failed with it */
  error: string | null = null;
  /** set by output_set; null = use Extism's output (or none) */
  output: Uint8Array | null = null;
  outputCap = 1024 * 1024;
  /** performance.now() past which the call is out of time */
  deadline = 0;
  /** fuel handed out per refuel */
  slice = 0n;
  outOfTime = false;
  /** a view of the whole guest memory, remade when the memory grows (memView) */
  view: Uint8Array = new Uint8Array(0);
  /** log lines left in the current second */
  logBudget = 0;
  logSecond = 0;
}

function bytesAt(state: CallState, ptr: number, len: number, what: string): Uint8Array {
  const mem = state.memory;
  if (mem === null) throw new HostLimitError("error", `${what}: the module exports no memory`);
  const buf = mem.buffer;
  if (ptr < 0 || len < 0 || ptr + len > buf.byteLength)
    throw new HostLimitError("error", `${what}: [${ptr}, ${ptr + len}) is outside guest memory`);
  return new Uint8Array(buf, ptr, len);
}

/**
 * The guest's whole memory as bytes, once [ptr, ptr + len) is checked to lie inside it: host
 * functions index it by ptr instead of making a view per argument.
 */
function memView(state: CallState, ptr: number, len: number, what: string): Uint8Array {
  const mem = state.memory;
  if (mem === null) throw new HostLimitError("error", `${what}: the module exports no memory`);
  let v = state.view;
  // a grown memory has a new buffer (the old one is detached)
  if (v.buffer !== mem.buffer) v = state.view = new Uint8Array(mem.buffer);
  if (ptr < 0 || len < 0 || ptr + len > v.length)
    throw new HostLimitError("error", `${what}: [${ptr}, ${ptr + len}) is outside guest memory`);
  return v;
}

/** Refuses an output over the call's cap before anything is copied. */
export function checkOutputSize(state: CallState, len: number): void {
  if (len > state.outputCap)
    throw new HostLimitError(
      "output",
      `output of ${len} bytes exceeds the cap of ${state.outputCap}`,
    );
}

/**
 * The call's output, copied (the guest's or Extism's memory changes after the call) into Node's
 * Buffer pool rather than an ArrayBuffer of its own.
 */
export function setOutput(state: CallState, bytes: Uint8Array): void {
  const out = Buffer.allocUnsafe(bytes.length);
  out.set(bytes);
  state.output = out;
}

const utf8 = new TextDecoder();
const MAX_NAME_BYTES = 4096;

/**
 * A text value for field_get / header_get / meta_get: its UTF-8 length, written at dst only when
 * it fits in cap (the guest asks again with room for it); -1 when there is no such value.
 */
function writeText(
  state: CallState,
  value: string | undefined,
  dst: number,
  cap: number,
  what: string,
): number {
  if (value === undefined) return -1;
  const n = Buffer.byteLength(value, "utf8");
  if (n > cap) return n;
  if (n > 0) writeUtf8(memView(state, dst, n, what), value, dst, n);
  return n;
}
// a key's bytes as one char each: distinct byte strings stay distinct keys, no UTF-8 validation
const keyAt = (state: CallState, ptr: number, len: number, what: string) =>
  latin1At(memView(state, ptr, len, what), ptr, ptr + len);
const LOG_LINES_PER_SECOND = 50;
const MAX_LOG_BYTES = 4096;

export function hostFunctions(state: CallState, services: HostServices) {
  // Extism passes its CallContext first; ours do not need it
  return {
    input_copy(_ctx: unknown, dst: number): number {
      const input = state.inputBytes();
      bytesAt(state, dst, input.length, "input_copy").set(input);
      return input.length;
    },
    output_set(_ctx: unknown, src: number, len: number): void {
      checkOutputSize(state, len);
      setOutput(state, bytesAt(state, src, len, "output_set"));
    },
    log(_ctx: unknown, level: number, ptr: number, len: number): void {
      const second = Math.floor(services.now() / 1000);
      if (second !== state.logSecond) {
        state.logSecond = second;
        state.logBudget = LOG_LINES_PER_SECOND;
      }
      if (state.logBudget <= 0) return;
      state.logBudget--;
      const text = utf8.decode(bytesAt(state, ptr, Math.min(len, MAX_LOG_BYTES), "log"));
      services.log(LEVELS[level] ?? "info", text);
    },
    now_ms(): number {
      return services.now();
    },
    verify_signature(
      _ctx: unknown,
      alg: number,
      keyPtr: number,
      keyLen: number,
      dataPtr: number,
      dataLen: number,
      sigPtr: number,
      sigLen: number,
    ): number {
      const key = bytesAt(state, keyPtr, keyLen, "verify_signature key");
      const data = bytesAt(state, dataPtr, dataLen, "verify_signature data");
      const sig = bytesAt(state, sigPtr, sigLen, "verify_signature signature");
      return verifySignature(alg, key, data, sig, services.keys);
    },
    rate_take(_ctx: unknown, keyPtr: number, keyLen: number, rate: number, burst: number): number {
      const key = keyAt(state, keyPtr, keyLen, "rate_take key");
      return services.rateLimits.take(key, rate, burst, services.now());
    },
    head_info(): number {
      return state.call.info();
    },
    field_get(_ctx: unknown, which: number, dst: number, cap: number): number {
      return writeText(state, state.call.field(which), dst, cap, "field_get");
    },
    header_get(
      _ctx: unknown,
      list: number,
      namePtr: number,
      nameLen: number,
      dst: number,
      cap: number,
    ): number {
      if (nameLen > MAX_NAME_BYTES) return -1;
      // a name that is no token names no header
      const name = headerNameAt(
        memView(state, namePtr, nameLen, "header_get name"),
        namePtr,
        namePtr + nameLen,
      );
      if (name === null) return -1;
      return writeText(state, state.call.header(list, name), dst, cap, "header_get");
    },
    meta_get(_ctx: unknown, keyPtr: number, keyLen: number, dst: number, cap: number): number {
      if (keyLen > MAX_NAME_BYTES) return -1;
      const key = utf8.decode(bytesAt(state, keyPtr, keyLen, "meta_get key"));
      return writeText(state, state.call.meta(key), dst, cap, "meta_get");
    },
    cache_get(_ctx: unknown, keyPtr: number, keyLen: number, dst: number, cap: number): number {
      if (keyLen > CACHE_MAX_KEY_BYTES) return -1;
      const key = keyAt(state, keyPtr, keyLen, "cache_get key");
      const v = services.cache.get(key, services.now());
      if (v === null) return -1;
      if (v.length <= cap) bytesAt(state, dst, v.length, "cache_get value").set(v);
      return v.length;
    },
    cache_set(
      _ctx: unknown,
      keyPtr: number,
      keyLen: number,
      valPtr: number,
      valLen: number,
      ttlMs: number,
    ): number {
      if (keyLen > CACHE_MAX_KEY_BYTES) return 0;
      const key = keyAt(state, keyPtr, keyLen, "cache_set key");
      const value = bytesAt(state, valPtr, valLen, "cache_set value");
      return services.cache.set(key, value, ttlMs, services.now()) ? 1 : 0;
    },
  };
}

export function verifySignature(
  alg: number,
  key: Uint8Array,
  data: Uint8Array,
  sig: Uint8Array,
  keys: KeyCache,
): number {
  if (alg === 1) {
    const mac = crypto.createHmac("sha256", key).update(data).digest();
    return mac.length === sig.length && crypto.timingSafeEqual(mac, sig) ? 1 : 0;
  }
  if (alg !== 2 && alg !== 3) return -1;
  const k = keys.get(utf8.decode(key));
  if (k === null) return -1;
  if (alg === 2 && k.asymmetricKeyType !== "rsa") return -1;
  if (alg === 3 && k.asymmetricKeyType !== "ec") return -1;
  try {
    const ok =
      alg === 2
        ? crypto.verify("sha256", data, k, sig)
        : crypto.verify("sha256", data, { key: k, dsaEncoding: "ieee-p1363" }, sig);
    return ok ? 1 : 0;
  } catch {
    return 0;
  }
}

/** Parsed public keys by their text, bounded (keys come from plugin configs, not requests). */
export class KeyCache {
  private readonly keys = new Map<string, KeyObject | null>();
  private readonly max: number;
  constructor(max = 256) {
    this.max = max;
  }
  get(text: string): KeyObject | null {
    const hit = this.keys.get(text);
    if (hit !== undefined) return hit;
    let k: KeyObject | null = null;
    try {
      const t = text.trim();
      k = t.startsWith("{")
        ? crypto.createPublicKey({
            key: JSON.parse(t) as crypto.JsonWebKeyInput["key"],
            format: "jwk",
          })
        : crypto.createPublicKey(t);
    } catch {
      k = null;
    }
    if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(text, k);
    return k;
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets by key for the `rate_take` host function, kept per worker process. Bounded in
 * two generations of maxKeys/2 (the approximate LRU of hashlru): a key is found in one lookup
 * while it is in the newer one, moves up when found in the older one, and is forgotten once
 * maxKeys/2 other keys arrived after its last use. A forgotten client starts with a full bucket,
 * which errs on the side of serving. (A Map kept in exact recency order costs a delete and a
 * re-insert per request: ~0.3 µs of the rate-limit plugin's 2.5.)
 */
export class RateLimitStore {
  private hot = new Map<string, Bucket>();
  private cold = new Map<string, Bucket>();
  private readonly half: number;
  constructor(maxKeys = 100_000) {
    this.half = Math.max(1, Math.floor(maxKeys / 2));
  }
  get size(): number {
    return this.hot.size + this.cold.size;
  }
  private lookup(key: string): Bucket | undefined {
    const b = this.hot.get(key);
    if (b !== undefined) return b;
    const old = this.cold.get(key);
    if (old !== undefined) {
      this.cold.delete(key);
      this.insert(key, old);
    }
    return old;
  }
  private insert(key: string, b: Bucket): void {
    if (this.hot.size >= this.half) {
      this.cold = this.hot;
      this.hot = new Map();
    }
    this.hot.set(key, b);
  }
  /** Takes one token: tokens left (≥ 0) when allowed, else minus the seconds until the next one. */
  take(key: string, ratePerSecond: number, burst: number, nowMs: number): number {
    if (!(ratePerSecond > 0) || !(burst >= 1)) return -1;
    let b = this.lookup(key);
    if (b === undefined) {
      b = { tokens: burst, at: nowMs };
      this.insert(key, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * ratePerSecond);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return Math.floor(b.tokens);
    }
    return -((1 - b.tokens) / ratePerSecond);
  }
}
