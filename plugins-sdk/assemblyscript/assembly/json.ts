// A small, strict JSON (RFC 8259) parser over UTF-8 bytes, and a serializer. Strict: no
// comments, trailing commas, leading zeros, lone surrogates or raw control characters in strings;
// nesting is capped (the input may be a JWT payload, i.e. attacker-chosen).

export namespace JsonKind {
  export const Null: i32 = 0;
  export const Bool: i32 = 1;
  export const Number: i32 = 2;
  export const String: i32 = 3;
  export const Array: i32 = 4;
  export const Object: i32 = 5;
}

const MAX_DEPTH = 64;

/** A parsed JSON value. Objects keep their keys in document order (lookups are linear: configs and claims are small). */
export class Json {
  kind: i32 = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Json[] | null = null;
  keys: string[] | null = null;

  static null_(): Json {
    return new Json();
  }
  static ofBool(b: bool): Json {
    const j = new Json();
    j.kind = JsonKind.Bool;
    j.bool = b;
    return j;
  }
  static ofNumber(n: f64): Json {
    const j = new Json();
    j.kind = JsonKind.Number;
    j.num = n;
    return j;
  }
  static ofString(s: string): Json {
    const j = new Json();
    j.kind = JsonKind.String;
    j.str = s;
    return j;
  }
  static array(): Json {
    const j = new Json();
    j.kind = JsonKind.Array;
    j.items = new Array<Json>();
    return j;
  }
  static object(): Json {
    const j = new Json();
    j.kind = JsonKind.Object;
    j.items = new Array<Json>();
    j.keys = new Array<string>();
    return j;
  }

  get isNull(): bool { return this.kind == JsonKind.Null; }
  get isBool(): bool { return this.kind == JsonKind.Bool; }
  get isNumber(): bool { return this.kind == JsonKind.Number; }
  get isString(): bool { return this.kind == JsonKind.String; }
  get isArray(): bool { return this.kind == JsonKind.Array; }
  get isObject(): bool { return this.kind == JsonKind.Object; }

  /** array length or object member count, 0 otherwise */
  get length(): i32 {
    const items = this.items;
    return items === null ? 0 : items.length;
  }
  /** array element `i`, null when out of range or not an array */
  at(i: i32): Json | null {
    const items = this.items;
    if (this.kind != JsonKind.Array || items === null || i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }
  /** object member `key`, null when absent or not an object */
  get(key: string): Json | null {
    const keys = this.keys;
    const items = this.items;
    if (keys === null || items === null) return null;
    for (let i = 0; i < keys.length; i++) if (unchecked(keys[i]) == key) return unchecked(items[i]);
    return null;
  }
  has(key: string): bool {
    return this.get(key) !== null;
  }
  /** the object's keys (empty when not an object) */
  keyList(): string[] {
    const keys = this.keys;
    return keys === null ? new Array<string>() : keys;
  }
  /** the array's elements (empty when not an array) */
  elements(): Json[] {
    const items = this.items;
    return this.kind != JsonKind.Array || items === null ? new Array<Json>() : items;
  }

  asString(fallback: string = ""): string {
    return this.kind == JsonKind.String ? this.str : fallback;
  }
  asNumber(fallback: f64 = 0): f64 {
    return this.kind == JsonKind.Number ? this.num : fallback;
  }
  asBool(fallback: bool = false): bool {
    return this.kind == JsonKind.Bool ? this.bool : fallback;
  }

  /** member `key` as a string; `fallback` when absent or another type */
  getString(key: string, fallback: string = ""): string {
    const v = this.get(key);
    return v === null ? fallback : v.asString(fallback);
  }
  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v === null ? fallback : v.asNumber(fallback);
  }
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v === null ? fallback : v.asBool(fallback);
  }
  /** member `key`'s elements when it is an array, else empty */
  getArray(key: string): Json[] {
    const v = this.get(key);
    return v === null ? new Array<Json>() : v.elements();
  }
  /** member `key` when it is an object, else null */
  getObject(key: string): Json | null {
    const v = this.get(key);
    return v !== null && v.isObject ? v : null;
  }
  /** member `key`'s string elements (others skipped) */
  getStrings(key: string): string[] {
    const out = new Array<string>();
    const els = this.getArray(key);
    for (let i = 0; i < els.length; i++) if (unchecked(els[i]).isString) out.push(unchecked(els[i]).str);
    return out;
  }

  push(v: Json): Json {
    this.items!.push(v);
    return this;
  }
  set(key: string, v: Json): Json {
    const keys = this.keys!;
    const items = this.items!;
    for (let i = 0; i < keys.length; i++) {
      if (unchecked(keys[i]) == key) {
        unchecked((items[i] = v));
        return this;
      }
    }
    keys.push(key);
    items.push(v);
    return this;
  }

  /** Compact JSON text (object members in their order). */
  toString(): string {
    const parts = new Array<string>();
    this.write(parts);
    return parts.join("");
  }

  private write(out: string[]): void {
    switch (this.kind) {
      case JsonKind.Null:
        out.push("null");
        break;
      case JsonKind.Bool:
        out.push(this.bool ? "true" : "false");
        break;
      case JsonKind.Number:
        out.push(numberText(this.num));
        break;
      case JsonKind.String:
        out.push(quote(this.str));
        break;
      case JsonKind.Array: {
        const items = this.items!;
        out.push("[");
        for (let i = 0; i < items.length; i++) {
          if (i > 0) out.push(",");
          unchecked(items[i]).write(out);
        }
        out.push("]");
        break;
      }
      default: {
        const keys = this.keys!;
        const items = this.items!;
        out.push("{");
        for (let i = 0; i < keys.length; i++) {
          if (i > 0) out.push(",");
          out.push(quote(unchecked(keys[i])));
          out.push(":");
          unchecked(items[i]).write(out);
        }
        out.push("}");
      }
    }
  }
}

/** Integers print without a fraction (as JSON.stringify does); non-finite numbers as null. */
export function numberText(n: f64): string {
  if (!isFinite(n)) return "null";
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992) return (<i64>n).toString();
  return n.toString();
}

/** A JSON string literal of `s`. */
export function quote(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return '"' + s + '"';
  const parts = new Array<string>();
  parts.push('"');
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    if (i > from) parts.push(s.substring(from, i));
    from = i + 1;
    if (c == 0x22) parts.push('\\"');
    else if (c == 0x5c) parts.push("\\\\");
    else if (c == 0x0a) parts.push("\\n");
    else if (c == 0x0d) parts.push("\\r");
    else if (c == 0x09) parts.push("\\t");
    else if (c == 0x08) parts.push("\\b");
    else if (c == 0x0c) parts.push("\\f");
    else parts.push("\\u00" + "0123456789abcdef".charAt(c >> 4) + "0123456789abcdef".charAt(c & 15));
  }
  if (from < s.length) parts.push(s.substring(from));
  parts.push('"');
  return parts.join("");
}

let lastError: string | null = null;

/** Why the last parseJson returned null. */
export function jsonError(): string {
  const e = lastError;
  return e === null ? "" : e;
}

/** Parses UTF-8 JSON text; null on any error (see jsonError()). */
export function parseJson(bytes: Uint8Array): Json | null {
  const p = new Parser(bytes.dataStart, <u32>bytes.length);
  return p.document();
}

/** Parses JSON from a string. */
export function parseJsonString(text: string): Json | null {
  const b = Uint8Array.wrap(String.UTF8.encode(text));
  return parseJson(b);
}

class Parser {
  base: usize;
  end: u32;
  i: u32 = 0;
  depth: i32 = 0;
  err: string | null = null;

  constructor(base: usize, len: u32) {
    this.base = base;
    this.end = len;
  }

  document(): Json | null {
    this.ws();
    const v = this.value();
    if (v !== null) {
      this.ws();
      if (this.i != this.end) return this.fail("unexpected data after the value");
    }
    if (v === null) return null;
    lastError = null;
    return v;
  }

  fail(msg: string): Json | null {
    if (this.err === null) {
      const e = msg + " at byte " + this.i.toString();
      this.err = e;
      lastError = e;
    }
    return null;
  }

  // @ts-ignore: decorator
  @inline peek(): u32 {
    return this.i < this.end ? <u32>load<u8>(this.base + <usize>this.i) : 0xffffffff;
  }

  ws(): void {
    while (this.i < this.end) {
      const c = load<u8>(this.base + <usize>this.i);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.i++;
    }
  }

  literal(word: string, v: Json): Json | null {
    const n = <u32>word.length;
    if (this.i + n > this.end) return this.fail("invalid literal");
    for (let k: u32 = 0; k < n; k++) {
      if (<u32>load<u8>(this.base + <usize>(this.i + k)) != <u32>word.charCodeAt(<i32>k)) return this.fail("invalid literal");
    }
    this.i += n;
    return v;
  }

  value(): Json | null {
    const c = this.peek();
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == 0x22) {
      const s = this.string();
      return s === null ? null : Json.ofString(s);
    }
    if (c == 0x74) return this.literal("true", Json.ofBool(true));
    if (c == 0x66) return this.literal("false", Json.ofBool(false));
    if (c == 0x6e) return this.literal("null", Json.null_());
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c == 0xffffffff) return this.fail("unexpected end of JSON");
    return this.fail("unexpected character");
  }

  object(): Json | null {
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.i++; // {
    const o = Json.object();
    this.ws();
    if (this.peek() == 0x7d) {
      this.i++;
      this.depth--;
      return o;
    }
    while (true) {
      this.ws();
      if (this.peek() != 0x22) return this.fail("expected a member name");
      const k = this.string();
      if (k === null) return null;
      this.ws();
      if (this.peek() != 0x3a) return this.fail("expected ':'");
      this.i++;
      this.ws();
      const v = this.value();
      if (v === null) return null;
      // a duplicate name keeps the last value, as JSON.parse does
      o.set(k, v);
      this.ws();
      const c = this.peek();
      this.i++;
      if (c == 0x2c) continue;
      if (c == 0x7d) break;
      this.i--;
      return this.fail("expected ',' or '}'");
    }
    this.depth--;
    return o;
  }

  array(): Json | null {
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    this.i++; // [
    const a = Json.array();
    this.ws();
    if (this.peek() == 0x5d) {
      this.i++;
      this.depth--;
      return a;
    }
    while (true) {
      this.ws();
      const v = this.value();
      if (v === null) return null;
      a.push(v);
      this.ws();
      const c = this.peek();
      this.i++;
      if (c == 0x2c) continue;
      if (c == 0x5d) break;
      this.i--;
      return this.fail("expected ',' or ']'");
    }
    this.depth--;
    return a;
  }

  number(): Json | null {
    const start = this.i;
    if (this.peek() == 0x2d) this.i++;
    let c = this.peek();
    if (c == 0x30) {
      this.i++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (this.peek() - 0x30 < 10) this.i++;
    } else {
      return this.fail("invalid number");
    }
    if (this.peek() == 0x2e) {
      this.i++;
      if (this.peek() - 0x30 >= 10) return this.fail("invalid number");
      while (this.peek() - 0x30 < 10) this.i++;
    }
    c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.i++;
      c = this.peek();
      if (c == 0x2b || c == 0x2d) this.i++;
      if (this.peek() - 0x30 >= 10) return this.fail("invalid number");
      while (this.peek() - 0x30 < 10) this.i++;
    }
    const text = String.UTF8.decodeUnsafe(this.base + <usize>start, <usize>(this.i - start));
    return Json.ofNumber(parseFloat(text));
  }

  hex4(): i32 {
    if (this.i + 4 > this.end) return -1;
    let v = 0;
    for (let k: u32 = 0; k < 4; k++) {
      const c = <i32>load<u8>(this.base + <usize>(this.i + k));
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else return -1;
      v = (v << 4) | d;
    }
    this.i += 4;
    return v;
  }

  string(): string | null {
    this.i++; // "
    const start = this.i;
    // fast path: no escapes, copy the UTF-8 slice as is
    while (this.i < this.end) {
      const c = load<u8>(this.base + <usize>this.i);
      if (c == 0x22) {
        const s = String.UTF8.decodeUnsafe(this.base + <usize>start, <usize>(this.i - start));
        this.i++;
        return s;
      }
      if (c == 0x5c) break;
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c >= 0x80) {
        const k = utf8SeqLen(this.base + <usize>this.i, this.end - this.i);
        if (k == 0) {
          this.fail("invalid UTF-8 in string");
          return null;
        }
        this.i += k;
        continue;
      }
      this.i++;
    }
    // slow path: unescape into a byte buffer (escapes never expand: \uXXXX is 6 bytes for ≤ 4)
    const out = new Uint8Array(<i32>(this.end - start));
    let n = <i32>(this.i - start);
    memory.copy(out.dataStart, this.base + <usize>start, <usize>n);
    while (true) {
      if (this.i >= this.end) {
        this.fail("unterminated string");
        return null;
      }
      const c = load<u8>(this.base + <usize>this.i);
      this.i++;
      if (c == 0x22) break;
      if (c < 0x20) {
        this.i--;
        this.fail("control character in string");
        return null;
      }
      if (c >= 0x80) {
        const k = utf8SeqLen(this.base + <usize>(this.i - 1), this.end - this.i + 1);
        if (k == 0) {
          this.i--;
          this.fail("invalid UTF-8 in string");
          return null;
        }
        memory.copy(out.dataStart + <usize>n, this.base + <usize>(this.i - 1), <usize>k);
        n += <i32>k;
        this.i += k - 1;
        continue;
      }
      if (c != 0x5c) {
        unchecked((out[n++] = c));
        continue;
      }
      const e = this.peek();
      this.i++;
      let b: i32 = -1;
      if (e == 0x22) b = 0x22;
      else if (e == 0x5c) b = 0x5c;
      else if (e == 0x2f) b = 0x2f;
      else if (e == 0x62) b = 0x08;
      else if (e == 0x66) b = 0x0c;
      else if (e == 0x6e) b = 0x0a;
      else if (e == 0x72) b = 0x0d;
      else if (e == 0x74) b = 0x09;
      if (b >= 0) {
        unchecked((out[n++] = <u8>b));
        continue;
      }
      if (e != 0x75) {
        this.i--;
        this.fail("invalid escape");
        return null;
      }
      let cp = this.hex4();
      if (cp < 0) {
        this.fail("invalid \\u escape");
        return null;
      }
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        this.fail("lone low surrogate");
        return null;
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (this.peek() != 0x5c) {
          this.fail("lone high surrogate");
          return null;
        }
        this.i++;
        if (this.peek() != 0x75) {
          this.fail("lone high surrogate");
          return null;
        }
        this.i++;
        const lo = this.hex4();
        if (lo < 0xdc00 || lo > 0xdfff) {
          this.fail("lone high surrogate");
          return null;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      n = putUtf8(out, n, cp);
    }
    return String.UTF8.decodeUnsafe(out.dataStart, <usize>n);
  }
}

/** The length of the well-formed UTF-8 sequence at `p` (RFC 3629: no overlongs, no surrogates), 0 if it is not. */
function utf8SeqLen(p: usize, avail: u32): u32 {
  const b0 = <u32>load<u8>(p);
  if (b0 < 0x80) return 1;
  let n: u32;
  let lo: u32 = 0x80;
  let hi: u32 = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) lo = 0xa0;
    else if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) lo = 0x90;
    else if (b0 == 0xf4) hi = 0x8f;
  } else return 0;
  if (avail < n) return 0;
  const b1 = <u32>load<u8>(p, 1);
  if (b1 < lo || b1 > hi) return 0;
  for (let k: u32 = 2; k < n; k++) {
    const b = <u32>load<u8>(p + <usize>k);
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return n;
}

function putUtf8(out: Uint8Array, n: i32, cp: i32): i32 {
  if (cp < 0x80) {
    unchecked((out[n++] = <u8>cp));
  } else if (cp < 0x800) {
    unchecked((out[n++] = <u8>(0xc0 | (cp >> 6))));
    unchecked((out[n++] = <u8>(0x80 | (cp & 63))));
  } else if (cp < 0x10000) {
    unchecked((out[n++] = <u8>(0xe0 | (cp >> 12))));
    unchecked((out[n++] = <u8>(0x80 | ((cp >> 6) & 63))));
    unchecked((out[n++] = <u8>(0x80 | (cp & 63))));
  } else {
    unchecked((out[n++] = <u8>(0xf0 | (cp >> 18))));
    unchecked((out[n++] = <u8>(0x80 | ((cp >> 12) & 63))));
    unchecked((out[n++] = <u8>(0x80 | ((cp >> 6) & 63))));
    unchecked((out[n++] = <u8>(0x80 | (cp & 63))));
  }
  return n;
}
