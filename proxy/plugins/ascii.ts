// Strings from plugin bytes on the call path (decisions, host-function arguments). Measured on
// the chain of four built-ins: building a string one char at a time costs ~0.14 µs and leaves
// a rope the next charCodeAt or regex has to flatten; Node's native latin1 slice costs ~0.06 µs
// and gives a flat string; header names plugins send are a handful of constants, so those are
// interned and a repeat costs a hash and a compare, with no allocation at all.

// Buffer's own latin1 slice works on any Uint8Array (it is not in @types/node)
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice(this: Uint8Array, start: number, end: number): string;
  }
).latin1Slice;

// and its UTF-8 write, which needs no view object at the destination
const utf8Write = (
  Buffer.prototype as unknown as {
    utf8Write(this: Uint8Array, s: string, offset: number, length: number): number;
  }
).utf8Write;

/** bytes [start, end) as one char each (keys: distinct bytes stay distinct, no validation) */
export function latin1At(b: Uint8Array, start: number, end: number): string {
  return start === end ? "" : latin1Slice.call(b, start, end);
}

/**
 * Writes `s` as UTF-8 at b[offset], which has room for `n` = its UTF-8 length; ASCII strings
 * this short are copied by hand (cheaper than the native call).
 */
export function writeUtf8(b: Uint8Array, s: string, offset: number, n: number): void {
  if (n === s.length && n <= 32) {
    for (let i = 0; i < n; i++) b[offset + i] = s.charCodeAt(i);
    return;
  }
  utf8Write.call(b, s, offset, n);
}

/** RFC 9110 §5.6.2 tchar: 1 lowercase-safe, 2 an uppercase letter (valid once lowered), 0 not. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 2;

/** bytes [start, end) as a string when they are all ASCII; null otherwise */
export function asciiAt(b: Uint8Array, start: number, end: number): string | null {
  for (let i = start; i < end; i++) if (b[i]! > 0x7f) return null;
  return start === end ? "" : latin1Slice.call(b, start, end);
}

/**
 * A field value (RFC 9110 §5.5) as a string: "cr" when it holds CR, LF or NUL, null when it is
 * not ASCII (the caller decodes UTF-8 and checks it).
 */
export function fieldValueAt(b: Uint8Array, start: number, end: number): string | "cr" | null {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c === 13 || c === 10 || c === 0) return "cr";
    if (c > 0x7f) ascii = false;
  }
  if (!ascii) return null;
  return start === end ? "" : latin1Slice.call(b, start, end);
}

const NAMES_MAX = 512;
const MAX_INTERNED_LENGTH = 64;
let names = new Map<number, string>();

/**
 * A header name as its lowercase string; null when the bytes are not a token. Names already in
 * lowercase (what SDKs send) are interned.
 */
export function headerNameAt(b: Uint8Array, start: number, end: number): string | null {
  if (end <= start) return null;
  let upper = false;
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    const k = TCHAR[c]!;
    if (k === 0) return null;
    if (k === 2) upper = true;
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (upper) return latin1Slice.call(b, start, end).toLowerCase();
  const len = end - start;
  if (len > MAX_INTERNED_LENGTH) return latin1Slice.call(b, start, end);
  const hit = names.get(h);
  if (hit !== undefined && hit.length === len) {
    let same = true;
    for (let i = 0; i < len; i++)
      if (hit.charCodeAt(i) !== b[start + i]) {
        same = false;
        break;
      }
    if (same) return hit;
  }
  const s = latin1Slice.call(b, start, end);
  // bounded: a plugin inventing names costs a fresh table now and then, never unbounded memory
  if (names.size >= NAMES_MAX) names = new Map();
  names.set(h, s);
  return s;
}
