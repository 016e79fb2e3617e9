// The imports a RAUTA plugin uses: the `rauta:host` functions of ABI v1 (plugins-sdk/ABI.md) and
// the few Extism kernel functions the SDK still needs (input length, config, error). AssemblyScript
// only emits an import for a function that is called, so a plugin imports what it uses.

// rauta:host, ABI v1
// @ts-ignore: decorator
@external("rauta:host", "input_copy")
declare function host_input_copy(dst: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "output_set")
declare function host_output_set(src: usize, len: usize): void;
// @ts-ignore: decorator
@external("rauta:host", "log")
declare function host_log(level: i32, ptr: usize, len: usize): void;
// @ts-ignore: decorator
@external("rauta:host", "now_ms")
declare function host_now_ms(): f64;
// @ts-ignore: decorator
@external("rauta:host", "verify_signature")
declare function host_verify_signature(alg: i32, key: usize, keyLen: usize, data: usize, dataLen: usize, sig: usize, sigLen: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "rate_take")
declare function host_rate_take(key: usize, keyLen: usize, rate: f64, burst: f64): f64;
// @ts-ignore: decorator
@external("rauta:host", "head_info")
declare function host_head_info(): i32;
// @ts-ignore: decorator
@external("rauta:host", "field_get")
declare function host_field_get(which: i32, dst: usize, cap: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "header_get")
declare function host_header_get(list: i32, name: usize, nameLen: usize, dst: usize, cap: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "meta_get")
declare function host_meta_get(key: usize, keyLen: usize, dst: usize, cap: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "cache_get")
declare function host_cache_get(key: usize, keyLen: usize, dst: usize, cap: usize): i32;
// @ts-ignore: decorator
@external("rauta:host", "cache_set")
declare function host_cache_set(key: usize, keyLen: usize, val: usize, valLen: usize, ttlMs: f64): i32;

// Extism kernel (extism:host/env): offsets here are Extism block addresses, not guest pointers
// @ts-ignore: decorator
@external("extism:host/env", "input_length")
declare function extism_input_length(): u64;
// @ts-ignore: decorator
@external("extism:host/env", "config_get")
declare function extism_config_get(key: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "length")
declare function extism_length(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "alloc")
declare function extism_alloc(len: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "free")
declare function extism_free(offs: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "load_u8")
declare function extism_load_u8(offs: u64): u8;
// @ts-ignore: decorator
@external("extism:host/env", "load_u64")
declare function extism_load_u64(offs: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "store_u8")
declare function extism_store_u8(offs: u64, v: u8): void;
// @ts-ignore: decorator
@external("extism:host/env", "store_u64")
declare function extism_store_u64(offs: u64, v: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "error_set")
declare function extism_error_set(offs: u64): void;

export namespace LogLevel {
  export const Debug: i32 = 0;
  export const Info: i32 = 1;
  export const Warn: i32 = 2;
  export const Error: i32 = 3;
}

/** Algorithms of `verifySignature` (the host's numbering). */
export namespace Alg {
  /** HMAC-SHA256; the key is the secret's bytes */
  export const HS256: i32 = 1;
  /** RSASSA-PKCS1-v1_5 SHA-256; the key is PEM text or a JWK as JSON text */
  export const RS256: i32 = 2;
  /** ECDSA P-256 SHA-256; the key as for RS256; the signature is r‖s (64 bytes) */
  export const ES256: i32 = 3;
}

/** Logs a line into the proxy's log (with the plugin's name and digest); the host rate-limits it. */
export function log(level: i32, message: string): void {
  const len = String.UTF8.byteLength(message);
  const buf = __alloc(<usize>len);
  String.UTF8.encodeUnsafe(changetype<usize>(message), message.length, buf);
  host_log(level, buf, <usize>len);
  __free(buf);
}

/** Wall clock, milliseconds since the epoch. */
export function nowMs(): f64 {
  return host_now_ms();
}

/** 1 valid, 0 invalid, -1 the host cannot use the key (wrong type for `alg`, unparsable). */
export function verifySignature(alg: i32, key: Uint8Array, data: Uint8Array, sig: Uint8Array): i32 {
  return host_verify_signature(
    alg,
    key.dataStart, <usize>key.length,
    data.dataStart, <usize>data.length,
    sig.dataStart, <usize>sig.length,
  );
}

/**
 * Takes one token from the host's bucket `key` (refilled at `ratePerSecond`, holding at most
 * `burst`): the tokens left (≥ 0) when allowed, else minus the seconds until the next token.
 */
export function rateTake(key: string, ratePerSecond: f64, burst: f64): f64 {
  const len = String.UTF8.byteLength(key);
  const buf = __alloc(<usize>len);
  String.UTF8.encodeUnsafe(changetype<usize>(key), key.length, buf);
  const r = host_rate_take(buf, <usize>len, ratePerSecond, burst);
  __free(buf);
  return r;
}

/** head_info: phase (bits 0-7), flags (8-15), status (16-31). */
export function headInfo(): i32 {
  return host_head_info();
}

// A text the host writes into a buffer: its length, or -1; asked again with room when it did not
// fit. The scratch buffer is made before the first call's heap mark and kept; a larger one for a
// long value lives in the call's heap (a global pointing there would dangle after the call).
const scratch = new ArrayBuffer(512);
// @ts-ignore: decorator
@inline function textOf(n: i32, retry: (dst: usize, cap: usize) => i32): string | null {
  if (n < 0) return null;
  if (n <= scratch.byteLength) return String.UTF8.decodeUnsafe(changetype<usize>(scratch), <usize>n);
  const big = new ArrayBuffer(n);
  const m = retry(changetype<usize>(big), <usize>n);
  if (m < 0 || m > n) return null;
  return String.UTF8.decodeUnsafe(changetype<usize>(big), <usize>m);
}

let askList: i32 = 0;
let askKey: ArrayBuffer = new ArrayBuffer(0);
let askField: i32 = 0;

/** Field `which` of the head (0 method, 1 scheme, 2 authority, 3 path, 4 query, 5 client, 6 route). */
export function fieldGet(which: i32): string {
  askField = which;
  const n = host_field_get(which, changetype<usize>(scratch), <usize>scratch.byteLength);
  const s = textOf(n, (dst: usize, cap: usize): i32 => host_field_get(askField, dst, cap));
  return s === null ? "" : s!;
}

/** The first value of a header (list 0 request, 1 response), null when absent. */
export function headerGet(list: i32, name: string): string | null {
  askList = list;
  askKey = String.UTF8.encode(name);
  const n = host_header_get(list, changetype<usize>(askKey), <usize>askKey.byteLength, changetype<usize>(scratch), <usize>scratch.byteLength);
  return textOf(n, (dst: usize, cap: usize): i32 =>
    host_header_get(askList, changetype<usize>(askKey), <usize>askKey.byteLength, dst, cap));
}

/** headerGet as the value's UTF-8 bytes (a copy of its own), null when absent. */
export function headerBytes(list: i32, name: string): Uint8Array | null {
  const key = String.UTF8.encode(name);
  const n = host_header_get(list, changetype<usize>(key), <usize>key.byteLength, changetype<usize>(scratch), <usize>scratch.byteLength);
  if (n < 0) return null;
  const out = new Uint8Array(n);
  if (n <= scratch.byteLength) {
    memory.copy(out.dataStart, changetype<usize>(scratch), <usize>n);
    return out;
  }
  const m = host_header_get(list, changetype<usize>(key), <usize>key.byteLength, out.dataStart, <usize>n);
  return m < 0 || m > n ? null : out.subarray(0, m);
}

/** Metadata `key` an earlier plugin set, null when absent. */
export function metaGet(key: string): string | null {
  askKey = String.UTF8.encode(key);
  const n = host_meta_get(changetype<usize>(askKey), <usize>askKey.byteLength, changetype<usize>(scratch), <usize>scratch.byteLength);
  return textOf(n, (dst: usize, cap: usize): i32 =>
    host_meta_get(changetype<usize>(askKey), <usize>askKey.byteLength, dst, cap));
}

/**
 * The bytes stored under `key` by cacheSet (of this plugin version, in this worker process), or
 * null when absent or expired. The host keeps them: a call's own heap is gone when it returns.
 */
export function cacheGet(key: string): Uint8Array | null {
  return cacheGetBytes(Uint8Array.wrap(String.UTF8.encode(key)));
}

/** cacheGet with the key as bytes (no string round trip for a key that came as bytes). */
export function cacheGetBytes(key: Uint8Array): Uint8Array | null {
  let out = new Uint8Array(256);
  let n = host_cache_get(key.dataStart, <usize>key.length, out.dataStart, <usize>out.length);
  if (n < 0) return null;
  if (n > out.length) {
    out = new Uint8Array(n);
    n = host_cache_get(key.dataStart, <usize>key.length, out.dataStart, <usize>out.length);
    if (n < 0 || n > out.length) return null;
  }
  return out.subarray(0, n);
}

/** Stores `value` under `key` for `ttlMs`; false when the host refused it (over its bounds). */
export function cacheSet(key: string, value: Uint8Array, ttlMs: f64): bool {
  return cacheSetBytes(Uint8Array.wrap(String.UTF8.encode(key)), value, ttlMs);
}

/** cacheSet with the key as bytes. */
export function cacheSetBytes(key: Uint8Array, value: Uint8Array, ttlMs: f64): bool {
  return host_cache_set(key.dataStart, <usize>key.length, value.dataStart, <usize>value.length, ttlMs) == 1;
}

/**
 * The call's input, copied once into guest memory; `length` of it is the input (input_copy's
 * count). Extism's input_length can exceed it: Extism 1.0.3 stores a Uint8Array input by its
 * whole underlying ArrayBuffer, so a host passing a view of a larger buffer reports that size.
 */
export class Input {
  constructor(public buf: ArrayBuffer, public length: i32) {}
}

export function readInput(): Input {
  const cap = <i32>extism_input_length();
  const buf = new ArrayBuffer(cap);
  const n = cap > 0 ? host_input_copy(changetype<usize>(buf)) : 0;
  if (n > cap) throw new Error("input_copy wrote past input_length");
  return new Input(buf, n);
}

/** Sets the call's output (the decision bytes) from guest memory. */
export function writeOutput(ptr: usize, len: usize): void {
  host_output_set(ptr, len);
}

function extismStore(bytes: usize, len: usize): u64 {
  const offs = extism_alloc(<u64>len);
  let i: usize = 0;
  for (; i + 8 <= len; i += 8) extism_store_u64(offs + <u64>i, load<u64>(bytes + i));
  for (; i < len; i++) extism_store_u8(offs + <u64>i, load<u8>(bytes + i));
  return offs;
}

/** Extism config value `key` as UTF-8 bytes, null when absent. Costs host calls per 8 bytes: read once. */
export function configBytes(key: string): Uint8Array | null {
  const k = String.UTF8.encode(key);
  const koffs = extismStore(changetype<usize>(k), <usize>k.byteLength);
  const offs = extism_config_get(koffs);
  extism_free(koffs);
  if (offs == 0) return null;
  const len = <i32>extism_length(offs);
  const out = new Uint8Array(len);
  const dst = out.dataStart;
  let i = 0;
  for (; i + 8 <= len; i += 8) store<u64>(dst + <usize>i, extism_load_u64(offs + <u64>i));
  for (; i < len; i++) store<u8>(dst + <usize>i, extism_load_u8(offs + <u64>i));
  extism_free(offs);
  return out;
}

/** Marks the current call as failed with `message` (Extism's error), whatever the return code. */
export function setError(message: string): void {
  const b = String.UTF8.encode(message);
  extism_error_set(extismStore(changetype<usize>(b), <usize>b.byteLength));
}

/**
 * The `abort` of every RAUTA AssemblyScript plugin (asc `--use abort=<this file>/rautaAbort`,
 * hack/plugins/build.ts passes it): logs where it happened, then traps, so a failed assertion,
 * a `throw` or an out-of-bounds access is a plugin failure with a reason, not a missing import.
 */
export function rautaAbort(message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0): void {
  const m = message === null ? "abort" : message;
  const f = fileName === null ? "?" : fileName;
  log(LogLevel.Error, "abort: " + m + " at " + f + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
