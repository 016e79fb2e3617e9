// The plugin ABI's two encodings (plugins-sdk/ABI.md): the call input the host writes and the
// decision a plugin answers. The host uses encodeInput/decodeDecision; the other two directions
// exist for the shared test vectors (plugins-sdk/testdata/) and `rauta plugin test`.
import { lowerIfNeeded } from "../filters/headers.ts";
import { asciiAt, fieldValueAt, headerNameAt } from "./ascii.ts";

export const ABI_VERSION = 1;
const MAGIC = 0x52;

export type Phase = "request" | "response";
export type Pairs = Array<[string, string]>;

export interface PluginInput {
  phase: Phase;
  method: string;
  scheme: string;
  authority: string;
  path: string;
  query: string;
  client: string;
  route: string;
  /** upstream status (response phase), 0 in the request phase */
  status: number;
  requestHeaders: Pairs;
  responseHeaders: Pairs;
  metadata: Pairs;
  /** only when the plugin asked for bodies */
  body?: Uint8Array;
  bodyTruncated?: boolean;
}

export type Op =
  | { op: "setRequestHeader"; name: string; value: string }
  | { op: "addRequestHeader"; name: string; value: string }
  | { op: "removeRequestHeader"; name: string }
  | { op: "setPath"; path: string }
  | { op: "setQuery"; query: string }
  | { op: "setAuthority"; authority: string }
  | { op: "setResponseHeader"; name: string; value: string }
  | { op: "addResponseHeader"; name: string; value: string }
  | { op: "removeResponseHeader"; name: string }
  | { op: "setMetadata"; key: string; value: string };

export type Decision =
  | { action: "continue" }
  | { action: "reject"; status: number; headers: Pairs; body: Uint8Array }
  | { action: "modify"; ops: Op[] };

export const CONTINUE: Decision = { action: "continue" };

const OPCODES = {
  setRequestHeader: 1,
  addRequestHeader: 2,
  removeRequestHeader: 3,
  setPath: 4,
  setQuery: 5,
  setAuthority: 6,
  setResponseHeader: 7,
  addResponseHeader: 8,
  removeResponseHeader: 9,
  setMetadata: 10,
} as const;

export class AbiError extends Error {}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Grows as it writes; one buffer per call input. */
class Writer {
  buf: Uint8Array;
  view: DataView;
  n = 0;
  constructor(size = 512) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  private room(k: number) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) {
    this.room(1);
    this.buf[this.n++] = v;
  }
  u16(v: number) {
    this.room(2);
    this.view.setUint16(this.n, v, true);
    this.n += 2;
  }
  u32(v: number) {
    this.room(4);
    this.view.setUint32(this.n, v, true);
    this.n += 4;
  }
  str(s: string) {
    // worst case 3 bytes per UTF-16 unit
    this.room(4 + s.length * 3);
    // ASCII (nearly every header, path and address) is copied by hand: encodeInto's per-call
    // cost and its subarray dominate for strings this short
    const buf = this.buf;
    const start = this.n + 4;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[start + i] = c;
    }
    let written = i;
    if (i < s.length) written = i + utf8.encodeInto(s.slice(i), buf.subarray(start + i)).written;
    this.view.setUint32(this.n, written, true);
    this.n = start + written;
  }
  bytes(b: Uint8Array) {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  pairs(p: Pairs) {
    this.u32(p.length);
    for (const [k, v] of p) {
      this.str(k);
      this.str(v);
    }
  }
  /**
   * An exact-size copy, from Node's Buffer pool: small copies share a slab instead of each
   * allocating an ArrayBuffer (measurable per plugin call). Extism's block path copies a view
   * into a buffer of its own (sandbox.ts).
   */
  done(): Uint8Array {
    const out = Buffer.allocUnsafe(this.n);
    out.set(this.buf.subarray(0, this.n));
    return out;
  }
}

// One scratch buffer for every input: encodeInput runs synchronously, and done() copies out.
let scratch: Writer | null = null;

// Decoding runs on every plugin call: no DataView, and a field's name is only turned into a
// message when the field is wrong (`what` is a constant; `index` numbers pairs and ops).
class Reader {
  private readonly buf: Uint8Array;
  n = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }
  private need(k: number, what: string, index: number) {
    if (this.n + k > this.buf.length)
      throw new AbiError(
        `truncated at byte ${this.n}: expected ${k} more byte(s) for ${named(what, index)}`,
      );
  }
  u8(what: string, index = -1): number {
    this.need(1, what, index);
    return this.buf[this.n++]!;
  }
  u16(what: string): number {
    this.need(2, what, -1);
    const b = this.buf;
    const v = b[this.n]! | (b[this.n + 1]! << 8);
    this.n += 2;
    return v;
  }
  u32(what: string, index = -1): number {
    this.need(4, what, index);
    const b = this.buf;
    const i = this.n;
    const v = (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
    this.n += 4;
    return v;
  }
  bytes(what: string, index = -1): Uint8Array {
    const len = this.u32(what, index);
    this.need(len, what, index);
    const b = this.buf.subarray(this.n, this.n + len);
    this.n += len;
    return b;
  }
  str(what: string, index = -1): string {
    const len = this.u32(what, index);
    this.need(len, what, index);
    const start = this.n;
    this.n += len;
    // ASCII by hand: TextDecoder's per-call cost dominates for strings this short
    if (len <= 64) {
      const a = asciiAt(this.buf, start, start + len);
      if (a !== null) return a;
    }
    return this.utf8(start, len, what, index);
  }
  private utf8(start: number, len: number, what: string, index: number): string {
    try {
      return utf8Decoder.decode(this.buf.subarray(start, start + len));
    } catch {
      throw new AbiError(`${named(what, index)} is not valid UTF-8`);
    }
  }
  /** A header name, lowercased; `what` ends in " name" (the error says where it was). */
  headerName(what: string, index: number): string {
    const len = this.u32(what, index);
    this.need(len, what, index);
    const start = this.n;
    this.n += len;
    const name = headerNameAt(this.buf, start, start + len);
    if (name === null) {
      const raw = new TextDecoder().decode(this.buf.subarray(start, start + len));
      throw new AbiError(
        `${what.slice(0, -5)} ${index}: invalid header name ${JSON.stringify(raw)}`,
      );
    }
    return name;
  }
  /** A header value: no CR, LF or NUL (RFC 9110 §5.5); `what` ends in " value". */
  headerValue(what: string, index: number): string {
    const len = this.u32(what, index);
    this.need(len, what, index);
    const start = this.n;
    this.n += len;
    const v = fieldValueAt(this.buf, start, start + len);
    if (v === "cr")
      throw new AbiError(`${what.slice(0, -6)} ${index}: header value contains CR, LF or NUL`);
    return v ?? this.utf8(start, len, what, index);
  }
  pairs(what: string): Pairs {
    const count = this.u32(what);
    // each pair takes at least 8 bytes: refuse counts the buffer cannot hold before allocating
    if (this.n + count * 8 > this.buf.length)
      throw new AbiError(`truncated at byte ${this.n}: ${count} ${what}s cannot fit`);
    const out: Pairs = [];
    const nameWhat = `${what} name`;
    for (let i = 0; i < count; i++) out.push([this.str(nameWhat, i), this.str(what, i)]);
    return out;
  }
  end() {
    if (this.n !== this.buf.length)
      throw new AbiError(`${this.buf.length - this.n} unexpected trailing byte(s)`);
  }
}

/** "request header[3] name" from ("request header name", 3); -1 = no index. */
function named(what: string, index: number): string {
  if (index < 0) return what;
  const sp = what.lastIndexOf(" ");
  const last = what.slice(sp + 1);
  return last === "name" ||
    last === "value" ||
    last === "key" ||
    last === "path" ||
    last === "query" ||
    last === "authority"
    ? `${what.slice(0, sp)}[${index}] ${last}`
    : `${what}[${index}]`;
}

export function encodeInput(i: PluginInput): Uint8Array {
  const w = (scratch ??= new Writer(4096));
  w.n = 0;
  w.u8(MAGIC);
  w.u8(ABI_VERSION);
  w.u8(i.phase === "request" ? 0 : 1);
  w.u8((i.body !== undefined ? 1 : 0) | (i.bodyTruncated ? 2 : 0));
  w.str(i.method);
  w.str(i.scheme);
  w.str(i.authority);
  w.str(i.path);
  w.str(i.query);
  w.str(i.client);
  w.str(i.route);
  w.u16(i.status);
  w.pairs(i.requestHeaders);
  w.pairs(i.responseHeaders);
  w.pairs(i.metadata);
  if (i.body !== undefined) w.bytes(i.body);
  return w.done();
}

export function decodeInput(buf: Uint8Array): PluginInput {
  const r = new Reader(buf);
  header(r, "input");
  const phase = r.u8("phase");
  if (phase > 1) throw new AbiError(`unknown phase ${phase}`);
  const flags = r.u8("flags");
  const input: PluginInput = {
    phase: phase === 0 ? "request" : "response",
    method: r.str("method"),
    scheme: r.str("scheme"),
    authority: r.str("authority"),
    path: r.str("path"),
    query: r.str("query"),
    client: r.str("client"),
    route: r.str("route"),
    status: r.u16("status"),
    requestHeaders: r.pairs("request header"),
    responseHeaders: r.pairs("response header"),
    metadata: r.pairs("metadata"),
  };
  if (flags & 1) {
    input.body = r.bytes("body").slice();
    if (flags & 2) input.bodyTruncated = true;
  }
  r.end();
  return input;
}

function header(r: Reader, what: string) {
  const magic = r.u8("magic");
  if (magic !== MAGIC)
    throw new AbiError(
      `${what} does not start with the RAUTA magic byte 0x52 (got 0x${magic.toString(16)})`,
    );
  const version = r.u8("version");
  if (version !== ABI_VERSION)
    throw new AbiError(
      `${what} is for ABI version ${version}; this proxy speaks version ${ABI_VERSION}`,
    );
}

export function encodeDecision(d: Decision): Uint8Array {
  if (d.action === "continue") return new Uint8Array(0);
  const w = new Writer(64);
  w.u8(MAGIC);
  w.u8(ABI_VERSION);
  if (d.action === "reject") {
    w.u8(1);
    w.u16(d.status);
    w.pairs(d.headers);
    w.bytes(d.body);
    return w.done();
  }
  w.u8(2);
  w.u32(d.ops.length);
  for (const op of d.ops) {
    w.u8(OPCODES[op.op]);
    switch (op.op) {
      case "setRequestHeader":
      case "addRequestHeader":
      case "setResponseHeader":
      case "addResponseHeader":
        w.str(op.name);
        w.str(op.value);
        break;
      case "removeRequestHeader":
      case "removeResponseHeader":
        w.str(op.name);
        break;
      case "setPath":
        w.str(op.path);
        break;
      case "setQuery":
        w.str(op.query);
        break;
      case "setAuthority":
        w.str(op.authority);
        break;
      case "setMetadata":
        w.str(op.key);
        w.str(op.value);
        break;
    }
  }
  return w.done();
}

// RFC 9110 §5.1 token, §5.5 field value (no CR, LF, NUL)
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FIELD_VALUE = /^[^\r\n\0]*$/;

function headerName(name: string, where: string, index: number): string {
  const l = lowerIfNeeded(name);
  if (!TOKEN.test(l))
    throw new AbiError(`${where} ${index}: invalid header name ${JSON.stringify(name)}`);
  return l;
}
function headerValue(value: string, where: string, index: number): string {
  if (!FIELD_VALUE.test(value))
    throw new AbiError(`${where} ${index}: header value contains CR, LF or NUL`);
  return value;
}

/** Decodes and validates a plugin's output; anything malformed is an AbiError (a plugin failure). */
export function decodeDecision(buf: Uint8Array, phase: Phase): Decision {
  if (buf.length === 0) return CONTINUE;
  const r = new Reader(buf);
  header(r, "decision");
  const action = r.u8("action");
  if (action === 0) {
    r.end();
    return CONTINUE;
  }
  if (action === 1) {
    const status = r.u16("status");
    if (status < 100 || status > 599)
      throw new AbiError(`reject status ${status} is outside 100-599`);
    const headers = r
      .pairs("reject header")
      .map(([k, v], i): [string, string] => [
        headerName(k, "reject header", i),
        headerValue(v, "reject header", i),
      ]);
    const body = r.bytes("reject body").slice();
    r.end();
    return { action: "reject", status, headers, body };
  }
  if (action !== 2) throw new AbiError(`unknown action ${action}`);
  const count = r.u32("op count");
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const code = r.u8("op", i);
    if (code <= 6 && phase === "response")
      throw new AbiError(`op ${i}: request op ${code} in on_response`);
    switch (code) {
      case 1:
      case 2:
      case 7:
      case 8: {
        const name = r.headerName("op name", i);
        const value = r.headerValue("op value", i);
        const op =
          code === 1
            ? "setRequestHeader"
            : code === 2
              ? "addRequestHeader"
              : code === 7
                ? "setResponseHeader"
                : "addResponseHeader";
        ops.push({ op, name, value });
        break;
      }
      case 3:
      case 9:
        ops.push({
          op: code === 3 ? "removeRequestHeader" : "removeResponseHeader",
          name: r.headerName("op name", i),
        });
        break;
      case 4: {
        const path = r.str("op path", i);
        if (path.charCodeAt(0) !== 47 || /[\s?#]/.test(path))
          throw new AbiError(
            `op ${i}: path ${JSON.stringify(path)} must start with / and hold no space, ? or #`,
          );
        ops.push({ op: "setPath", path });
        break;
      }
      case 5: {
        const query = r.str("op query", i);
        if (/[\s#]/.test(query)) throw new AbiError(`op ${i}: query holds a space or #`);
        ops.push({ op: "setQuery", query });
        break;
      }
      case 6: {
        const authority = r.str("op authority", i);
        if (!/^[A-Za-z0-9.\-:[\]_~%!$&'()*+,;=]+$/.test(authority))
          throw new AbiError(`op ${i}: invalid authority ${JSON.stringify(authority)}`);
        ops.push({ op: "setAuthority", authority });
        break;
      }
      case 10:
        ops.push({ op: "setMetadata", key: r.str("op key", i), value: r.str("op value", i) });
        break;
      default:
        throw new AbiError(`op ${i}: unknown op ${code}`);
    }
  }
  r.end();
  return { action: "modify", ops };
}
