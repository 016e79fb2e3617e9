// The two encodings of ABI v1 (plugins-sdk/ABI.md) on the guest side: the call input (single
// values asked of the host, the buffer copied only for lists and bodies) and the decision
// builders. `run()` ties one call together: at most one input copy, one output copy, and a heap
// that is released when the call returns (rt/arena.ts).
import { readInput, writeOutput, setError, configBytes, log, LogLevel, Input, headInfo, fieldGet, headerGet, headerBytes, metaGet } from "./host";
import { Json, parseJson, jsonError } from "./json";

const MAGIC: u8 = 0x52;
export const ABI_VERSION: u8 = 1;

export namespace Phase {
  export const Request: i32 = 0;
  export const Response: i32 = 1;
}

/** One (name, value) of a header or metadata list. */
export class Pair {
  constructor(public name: string, public value: string) {}
}

function utf8At(p: usize): string {
  return String.UTF8.decodeUnsafe(p + 4, <usize>load<u32>(p));
}

/** Header names arrive lowercase: compare ASCII case-insensitively against `name`, in place. */
function nameIs(p: usize, name: string): bool {
  const len = load<u32>(p);
  if (len != <u32>name.length) return false;
  const b = p + 4;
  for (let i = 0; i < name.length; i++) {
    let c = <u32>name.charCodeAt(i);
    if (c - 65 < 26) c |= 32;
    if (<u32>load<u8>(b + <usize>i) != c) return false;
  }
  return true;
}

/**
 * The call input. Single fields, one header and one metadata entry are asked of the host
 * (field_get, header_get, meta_get): nothing else is copied or decoded. Whatever needs more (all
 * headers, every value of a header, the body) copies the whole input once (input_copy) and
 * reads it from there (InputView).
 */
export class Request {
  private info: i32 = -1;
  private fieldCache: StaticArray<string | null> = new StaticArray<string | null>(7);
  private view: InputView | null = null;

  private head(): i32 {
    if (this.info < 0) this.info = headInfo();
    return this.info;
  }
  private all(): InputView {
    let v = this.view;
    if (v === null) this.view = v = new InputView(readInput());
    return v;
  }
  private field(i: i32): string {
    let f = unchecked(this.fieldCache[i]);
    if (f === null) {
      f = fieldGet(i);
      unchecked((this.fieldCache[i] = f));
    }
    return f!;
  }

  /** Phase.Request or Phase.Response */
  get phase(): i32 { return this.head() & 0xff; }
  get hasBody(): bool { return ((this.head() >> 8) & 1) != 0; }
  get bodyTruncated(): bool { return ((this.head() >> 8) & 2) != 0; }
  /** the upstream status in the response phase, 0 in the request phase */
  get status(): i32 { return (this.head() >>> 16) & 0xffff; }

  get method(): string { return this.field(0); }
  get scheme(): string { return this.field(1); }
  /** as the client sent it (Host / :authority) */
  get authority(): string { return this.field(2); }
  /** normalized, without the query */
  get path(): string { return this.field(3); }
  /** without '?', "" when absent */
  get query(): string { return this.field(4); }
  /** the client's address, e.g. "127.0.0.1" or "::1" */
  get client(): string { return this.field(5); }
  /** "<namespace>/<name>/rule/<index>" */
  get route(): string { return this.field(6); }

  /** The first value of request header `name` (any case), null when absent. */
  header(name: string): string | null { return headerGet(0, name); }
  /** header() as UTF-8 bytes, for a plugin that compares or hashes values without decoding them. */
  headerBytes(name: string): Uint8Array | null { return headerBytes(0, name); }
  /** Every value of request header `name`, in arrival order. */
  headerValues(name: string): string[] { return this.all().headerValues(name); }
  /** All request headers, in arrival order. */
  headers(): Pair[] { return this.all().headers(); }
  /** The first value of response header `name` (response phase), null when absent. */
  responseHeader(name: string): string | null { return headerGet(1, name); }
  responseHeaderValues(name: string): string[] { return this.all().responseHeaderValues(name); }
  responseHeaders(): Pair[] { return this.all().responseHeaders(); }
  /** Metadata `key` (exact, case-sensitive) that an earlier plugin set, null when absent. */
  meta(key: string): string | null { return metaGet(key); }
  metadata(): Pair[] { return this.all().metadata(); }
  /** The body bytes (a view into the input; empty without a body or without needsBody). */
  body(): Uint8Array { return this.hasBody ? this.all().body() : new Uint8Array(0); }
  bodyText(): string { return this.hasBody ? this.all().bodyText() : ""; }
}

/**
 * The whole call input as the ABI's buffer, for what Request does not ask of the host. Decoding
 * walks it once to find where each list starts; strings are only built for what is asked for.
 */
class InputView {
  readonly hasBody: bool;
  private buf: ArrayBuffer;
  private base: usize;
  // offsets (from base) of each list's first pair and of the body
  private reqAt: u32 = 0;
  private reqCount: u32 = 0;
  private respAt: u32 = 0;
  private respCount: u32 = 0;
  private metaAt: u32 = 0;
  private metaCount: u32 = 0;
  private bodyAt: u32 = 0;
  private end: u32 = 0;

  constructor(input: Input) {
    this.buf = input.buf;
    this.base = changetype<usize>(input.buf);
    this.end = <u32>input.length;
    if (this.end < 4 || load<u8>(this.base) != MAGIC) throw new Error("input is not a RAUTA call input");
    if (load<u8>(this.base, 1) != ABI_VERSION) throw new Error("input is for another ABI version");
    this.hasBody = (load<u8>(this.base, 3) & 1) != 0;
    // the seven leading strs and the status come from field_get / head_info (Request)
    let n: u32 = 4;
    for (let i = 0; i < 7; i++) n = this.skipStr(n);
    this.need(n, 2);
    n += 2;
    this.need(n, 4);
    this.reqCount = load<u32>(this.base + <usize>n);
    this.reqAt = n + 4;
    n = this.skipPairs(this.reqAt, this.reqCount);
    this.need(n, 4);
    this.respCount = load<u32>(this.base + <usize>n);
    this.respAt = n + 4;
    n = this.skipPairs(this.respAt, this.respCount);
    this.need(n, 4);
    this.metaCount = load<u32>(this.base + <usize>n);
    this.metaAt = n + 4;
    n = this.skipPairs(this.metaAt, this.metaCount);
    if (this.hasBody) {
      this.bodyAt = n;
      n = this.skipStr(n);
    }
    if (n != this.end) throw new Error("input has trailing bytes");
  }

  private need(at: u32, k: u32): void {
    if (<u64>at + <u64>k > <u64>this.end) throw new Error("input is truncated");
  }
  private skipStr(at: u32): u32 {
    this.need(at, 4);
    const len = load<u32>(this.base + <usize>at);
    this.need(at + 4, len);
    return at + 4 + len;
  }
  private skipPairs(at: u32, count: u32): u32 {
    let n = at;
    for (let i: u32 = 0; i < count; i++) n = this.skipStr(this.skipStr(n));
    return n;
  }

  /** Every value of request header `name`, in arrival order. */
  headerValues(name: string): string[] {
    return this.all(this.reqAt, this.reqCount, name);
  }
  /** All request headers, in arrival order. */
  headers(): Pair[] {
    return this.pairs(this.reqAt, this.reqCount);
  }
  responseHeaderValues(name: string): string[] {
    return this.all(this.respAt, this.respCount, name);
  }
  responseHeaders(): Pair[] {
    return this.pairs(this.respAt, this.respCount);
  }
  metadata(): Pair[] {
    return this.pairs(this.metaAt, this.metaCount);
  }
  /** The body bytes (a view into the input; empty without a body). */
  body(): Uint8Array {
    if (!this.hasBody) return new Uint8Array(0);
    const at = this.bodyAt;
    return Uint8Array.wrap(this.buf, <i32>at + 4, <i32>load<u32>(this.base + <usize>at));
  }
  bodyText(): string {
    if (!this.hasBody) return "";
    return utf8At(this.base + <usize>this.bodyAt);
  }

  private all(at: u32, count: u32, name: string): string[] {
    const out = new Array<string>();
    let p = this.base + <usize>at;
    for (let i: u32 = 0; i < count; i++) {
      const v = p + 4 + <usize>load<u32>(p);
      if (nameIs(p, name)) out.push(utf8At(v));
      p = v + 4 + <usize>load<u32>(v);
    }
    return out;
  }
  private pairs(at: u32, count: u32): Pair[] {
    const out = new Array<Pair>();
    let p = this.base + <usize>at;
    for (let i: u32 = 0; i < count; i++) {
      const v = p + 4 + <usize>load<u32>(p);
      out.push(new Pair(utf8At(p), utf8At(v)));
      p = v + 4 + <usize>load<u32>(v);
    }
    return out;
  }
}

/** A little-endian byte writer that grows in place (the arena extends its last block). */
export class Writer {
  buf: ArrayBuffer;
  n: i32 = 0;
  constructor(size: i32 = 128) {
    this.buf = new ArrayBuffer(size);
  }
  private room(k: i32): usize {
    const need = this.n + k;
    let size = this.buf.byteLength;
    if (need > size) {
      while (size < need) size <<= 1;
      const next = new ArrayBuffer(size);
      memory.copy(changetype<usize>(next), changetype<usize>(this.buf), <usize>this.n);
      this.buf = next;
    }
    return changetype<usize>(this.buf) + <usize>this.n;
  }
  u8(v: u8): Writer {
    store<u8>(this.room(1), v);
    this.n += 1;
    return this;
  }
  u16(v: u16): Writer {
    store<u16>(this.room(2), v);
    this.n += 2;
    return this;
  }
  u32(v: u32): Writer {
    store<u32>(this.room(4), v);
    this.n += 4;
    return this;
  }
  /** u32 byte length + UTF-8 */
  str(s: string): Writer {
    const len = String.UTF8.byteLength(s);
    const p = this.room(4 + len);
    store<u32>(p, <u32>len);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p + 4);
    this.n += 4 + len;
    return this;
  }
  /** u32 byte length + the bytes */
  bytes(b: Uint8Array): Writer {
    const p = this.room(4 + b.length);
    store<u32>(p, <u32>b.length);
    memory.copy(p + 4, b.dataStart, <usize>b.length);
    this.n += 4 + b.length;
    return this;
  }
  patchU32(at: i32, v: u32): void {
    store<u32>(changetype<usize>(this.buf) + <usize>at, v);
  }
  get ptr(): usize {
    return changetype<usize>(this.buf);
  }
}

export namespace Action {
  export const Continue: u8 = 0;
  export const Reject: u8 = 1;
  export const Modify: u8 = 2;
  /** not on the wire: run() reports the call as a plugin failure */
  export const Fail: u8 = 255;
}

/** What a plugin answers. CONTINUE encodes as empty output; the others as ABI.md says. */
export class Decision {
  /** Action.* */
  readonly action: u8;
  /** the encoded decision (null for CONTINUE) */
  protected w: Writer | null;
  /** the failure message (Action.Fail) */
  readonly message: string;

  protected constructor(action: u8, w: Writer | null, message: string = "") {
    this.action = action;
    this.w = w;
    this.message = message;
  }

  /** Let the request (or response) through unchanged. */
  static continue_(): Decision {
    return new Decision(Action.Continue, null);
  }

  /** Answer the client now with `status` (100–599), `headers` ([[name, value], …]) and a UTF-8 body. */
  static reject(status: i32, headers: string[][] | null = null, body: string = ""): Decision {
    const w = Decision.rejectHead(status, headers);
    w.str(body);
    return new Decision(Action.Reject, w);
  }

  /** As reject, with a binary body. */
  static rejectBytes(status: i32, headers: string[][] | null, body: Uint8Array): Decision {
    const w = Decision.rejectHead(status, headers);
    w.bytes(body);
    return new Decision(Action.Reject, w);
  }

  /**
   * A decision already encoded: `bytes` as an earlier call's encodedBytes() gave them (e.g. kept
   * with cacheSet). The host checks them as it checks any decision; empty bytes are CONTINUE.
   */
  static raw(bytes: Uint8Array): Decision {
    if (bytes.length == 0) return Decision.continue_();
    const w = new Writer(bytes.length);
    memory.copy(w.ptr, bytes.dataStart, <usize>bytes.length);
    w.n = bytes.length;
    return new Decision(bytes.length > 2 ? load<u8>(bytes.dataStart + 2) : Action.Modify, w);
  }

  /** Start a MODIFY decision; see Modify. */
  static modify(): Modify {
    return new Modify();
  }

  /** Fail the call (the RautaPlugin's failurePolicy applies); `message` is logged by the host. */
  static fail(message: string): Decision {
    return new Decision(Action.Fail, null, message);
  }

  private static rejectHead(status: i32, headers: string[][] | null): Writer {
    const w = new Writer(64);
    w.u8(MAGIC).u8(ABI_VERSION).u8(Action.Reject).u16(<u16>status);
    if (headers === null) {
      w.u32(0);
    } else {
      w.u32(<u32>headers.length);
      for (let i = 0; i < headers.length; i++) {
        const h = unchecked(headers[i]);
        if (h.length != 2) throw new Error("reject: each header is [name, value]");
        w.str(unchecked(h[0])).str(unchecked(h[1]));
      }
    }
    return w;
  }

  /** The wire bytes' writer, null for CONTINUE. */
  encoded(): Writer | null {
    return this.w;
  }

  /** The wire bytes (empty for CONTINUE), e.g. to keep with cacheSet and answer with raw(). */
  encodedBytes(): Uint8Array {
    const w = this.w;
    if (w === null) return new Uint8Array(0);
    const out = new Uint8Array(w.n);
    memory.copy(out.dataStart, w.ptr, <usize>w.n);
    return out;
  }
}

const OP_SET_REQUEST_HEADER: u8 = 1;
const OP_ADD_REQUEST_HEADER: u8 = 2;
const OP_REMOVE_REQUEST_HEADER: u8 = 3;
const OP_SET_PATH: u8 = 4;
const OP_SET_QUERY: u8 = 5;
const OP_SET_AUTHORITY: u8 = 6;
const OP_SET_RESPONSE_HEADER: u8 = 7;
const OP_ADD_RESPONSE_HEADER: u8 = 8;
const OP_REMOVE_RESPONSE_HEADER: u8 = 9;
const OP_SET_METADATA: u8 = 10;

/**
 * A MODIFY decision, built op by op (each method returns this); the host applies the ops in
 * order. Request ops are only valid in on_request; response ops in on_request apply to the
 * response the request eventually gets.
 */
export class Modify extends Decision {
  private count: u32 = 0;

  constructor() {
    const w = new Writer(128);
    // the op count is patched in place as ops are added: the buffer is the output as is
    w.u8(MAGIC).u8(ABI_VERSION).u8(Action.Modify).u32(0);
    super(Action.Modify, w);
  }

  private op(code: u8): Writer {
    const w = this.w!;
    w.patchU32(3, ++this.count);
    return w.u8(code);
  }

  /** how many ops so far */
  get size(): u32 {
    return this.count;
  }
  /** CONTINUE when no op was added (an empty output costs the host nothing), else this. */
  orContinue(): Decision {
    return this.count == 0 ? Decision.continue_() : this;
  }

  setRequestHeader(name: string, value: string): Modify {
    this.op(OP_SET_REQUEST_HEADER).str(name).str(value);
    return this;
  }
  addRequestHeader(name: string, value: string): Modify {
    this.op(OP_ADD_REQUEST_HEADER).str(name).str(value);
    return this;
  }
  removeRequestHeader(name: string): Modify {
    this.op(OP_REMOVE_REQUEST_HEADER).str(name);
    return this;
  }
  /** must start with '/'; the host normalizes it again */
  setPath(path: string): Modify {
    this.op(OP_SET_PATH).str(path);
    return this;
  }
  /** without '?' */
  setQuery(query: string): Modify {
    this.op(OP_SET_QUERY).str(query);
    return this;
  }
  setAuthority(authority: string): Modify {
    this.op(OP_SET_AUTHORITY).str(authority);
    return this;
  }
  setResponseHeader(name: string, value: string): Modify {
    this.op(OP_SET_RESPONSE_HEADER).str(name).str(value);
    return this;
  }
  addResponseHeader(name: string, value: string): Modify {
    this.op(OP_ADD_RESPONSE_HEADER).str(name).str(value);
    return this;
  }
  removeResponseHeader(name: string): Modify {
    this.op(OP_REMOVE_RESPONSE_HEADER).str(name);
    return this;
  }
  /** seen by later plugins of this request (Request.meta) */
  setMetadata(key: string, value: string): Modify {
    this.op(OP_SET_METADATA).str(key).str(value);
    return this;
  }
}

// ---- the call loop ------------------------------------------------------------------------

let configValue: Json | null = null;
let configError: string | null = null;
let setupError: string | null = null;
let inCall = false;

/**
 * The plugin's `spec.config` (Extism config key "config"), parsed; a null Json when the
 * RautaPlugin has none or it does not parse. Parsed once and kept when first called from a Setup
 * (see run); a handler that calls it re-parses it on every call, as a call's heap is released
 * when it returns. A config that is not JSON fails every call when a Setup is given.
 */
export function config(): Json {
  const cached = configValue;
  if (cached !== null) return cached;
  const v = parseConfig();
  if (!inCall) configValue = v;
  return v;
}

function parseConfig(): Json {
  const bytes = configBytes("config");
  if (bytes === null || bytes.length == 0) return Json.null_();
  const v = parseJson(bytes);
  if (v === null) {
    if (!inCall) configError = "config is not valid JSON: " + jsonError();
    return Json.null_();
  }
  return v;
}

/** A plugin's per-phase handler. */
export type Handler = (req: Request) => Decision;
/**
 * Runs once, before the first call's heap mark: read config() into globals here (what it
 * allocates persists). Return null when ready, or a message: every call then fails with it (a
 * config the plugin refuses). Taking no argument keeps the JSON parser out of plugins without one.
 */
export type Setup = () => string | null;

let setupDone = false;

// @ts-ignore: decorator
@inline function heapMark(): usize {
  // @ts-ignore: the arena runtime's global (rt/arena.ts); absent under another runtime
  if (isDefined(__rauta_heap_mark)) return __rauta_heap_mark();
  return 0;
}

// @ts-ignore: decorator
@inline function heapRelease(mark: usize): void {
  // @ts-ignore: as above
  if (isDefined(__rauta_heap_release)) __rauta_heap_release(mark);
}

function failWith(message: string): i32 {
  log(LogLevel.Error, message);
  setError(message);
  return 1;
}

/**
 * One plugin call: setup on the first, then decode the input, run `handler`, set the output.
 * Export your phases through it:
 *   export function on_request(): i32 { return run(onRequest, setup); }
 */
export function run(handler: Handler, setup: Setup | null = null): i32 {
  // still set: the last call trapped midway, leaving its heap, its shadow stack and maybe a
  // global half-updated. The host replaces an instance after any failure; say so if it did not.
  if (inCall) return failWith("a previous call trapped: this plugin instance must be replaced");
  if (!setupDone) {
    setupDone = true;
    if (setup !== null) {
      // set first: a setup that traps leaves this message for every later call
      setupError = "setup trapped (see the abort logged before)";
      const e = setup();
      // a config that is not JSON outranks what setup made of the null Json it got
      const parse = configError;
      setupError = parse !== null ? parse : e;
    }
  }
  const mark = heapMark();
  let rc = 0;
  if (setupError !== null) {
    rc = failWith(setupError!);
  } else {
    inCall = true;
    const req = new Request();
    const d = handler(req);
    if (d.action == Action.Fail) {
      rc = failWith(d.message);
    } else {
      const w = d.encoded();
      if (w !== null) writeOutput(w.ptr, <usize>w.n);
    }
    inCall = false;
  }
  heapRelease(mark);
  return rc;
}
