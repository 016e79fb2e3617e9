// A small reader/patcher for the WebAssembly binary format, without binaryen: it lists imports
// and memories and caps the linear memory's maximum by rewriting the memory section's limits.
// binaryen's setMemory would replace the data segments, so the cap is patched into the bytes.
// Every length is checked against its section before it is used, so malformed input is a
// WasmFormatError, never a read past the end.

export class WasmFormatError extends Error {}

export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

export interface WasmImport {
  module: string;
  name: string;
  kind: ExternKind;
}

export interface MemoryLimits {
  /** pages of 64 KiB */
  initial: number;
  /** undefined: the module did not declare one (the engine's limit applies) */
  maximum: number | undefined;
  shared: boolean;
  memory64: boolean;
  imported: boolean;
}

const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const KINDS: readonly ExternKind[] = ["function", "table", "memory", "global", "tag"];
const FLAG_HAS_MAX = 0x01;
const FLAG_SHARED = 0x02;
const FLAG_MEMORY64 = 0x04;
const KNOWN_FLAGS = FLAG_HAS_MAX | FLAG_SHARED | FLAG_MEMORY64;
const utf8 = new TextDecoder("utf-8", { fatal: true });

class Cursor {
  readonly bytes: Uint8Array;
  at: number;
  readonly end: number;
  readonly where: string;
  constructor(bytes: Uint8Array, at: number, end: number, where: string) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
    this.where = where;
  }
  fail(msg: string): never {
    throw new WasmFormatError(`${this.where} at byte ${this.at}: ${msg}`);
  }
  byte(): number {
    if (this.at >= this.end) this.fail("unexpected end");
    return this.bytes[this.at++]!;
  }
  /** unsigned LEB128 of at most `bits` bits, as a Number (so at most 2^53 - 1) */
  uleb(bits = 32): number {
    let value = 0;
    let scale = 1;
    const maxBytes = Math.ceil(bits / 7);
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (value > Number.MAX_SAFE_INTEGER || (bits <= 32 && value > 0xffffffff))
          this.fail(`LEB128 value does not fit ${bits} bits`);
        return value;
      }
      scale *= 128;
    }
    return this.fail("LEB128 value is too long");
  }
  skip(n: number) {
    if (n > this.end - this.at) this.fail(`length ${n} runs past the end`);
    this.at += n;
  }
  name(): string {
    const len = this.uleb();
    const start = this.at;
    this.skip(len);
    try {
      return utf8.decode(this.bytes.subarray(start, start + len));
    } catch {
      return this.fail("name is not valid UTF-8");
    }
  }
}

interface Section {
  id: number;
  /** offset of the id byte */
  start: number;
  /** payload bounds */
  body: number;
  end: number;
}

/** The top-level sections, with their framing (magic, version, LEB128 sizes) checked. */
function sections(bytes: Uint8Array): Section[] {
  if (
    bytes.length < 8 ||
    bytes[0] !== 0 ||
    bytes[1] !== 0x61 ||
    bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d
  )
    throw new WasmFormatError("not a WebAssembly module: the \\0asm magic is missing");
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0)
    throw new WasmFormatError("unsupported WebAssembly binary version (expected 1)");
  const out: Section[] = [];
  const c = new Cursor(bytes, 8, bytes.length, "section header");
  while (c.at < bytes.length) {
    const start = c.at;
    const id = c.byte();
    const size = c.uleb();
    const body = c.at;
    c.skip(size);
    out.push({ id, start, body, end: c.at });
  }
  return out;
}

function limits(c: Cursor, imported: boolean): MemoryLimits {
  const flags = c.byte();
  // bit 3 (custom page sizes) and up would change what a page is: refuse rather than misread
  if ((flags & ~KNOWN_FLAGS) !== 0)
    c.fail(`unsupported memory limits flags 0x${flags.toString(16)}`);
  const bits = flags & FLAG_MEMORY64 ? 64 : 32;
  const initial = c.uleb(bits);
  const maximum = flags & FLAG_HAS_MAX ? c.uleb(bits) : undefined;
  return { initial, maximum, shared: (flags & FLAG_SHARED) !== 0, memory64: bits === 64, imported };
}

function tableLimits(c: Cursor) {
  const flags = c.byte();
  c.uleb(flags & FLAG_MEMORY64 ? 64 : 32);
  if (flags & FLAG_HAS_MAX) c.uleb(flags & FLAG_MEMORY64 ? 64 : 32);
}

/** A value or reference type: one byte, or 0x63/0x64 (ref null? ht) followed by a heap type. */
function valueType(c: Cursor) {
  const t = c.byte();
  if (t === 0x63 || t === 0x64) c.uleb(33); // s33 heap type; its magnitude is irrelevant here
}

interface Scan {
  imports: WasmImport[];
  memories: MemoryLimits[];
  memorySection: Section | undefined;
}

function scan(bytes: Uint8Array): Scan {
  const imports: WasmImport[] = [];
  const memories: MemoryLimits[] = [];
  let memorySection: Section | undefined;
  for (const s of sections(bytes)) {
    if (s.id === SECTION_IMPORT) {
      const c = new Cursor(bytes, s.body, s.end, "import section");
      const count = c.uleb();
      for (let i = 0; i < count; i++) {
        const module = c.name();
        const name = c.name();
        const k = c.byte();
        const kind = KINDS[k] ?? c.fail(`unknown import kind 0x${k.toString(16)}`);
        if (kind === "function") c.uleb();
        else if (kind === "memory") memories.push(limits(c, true));
        else if (kind === "table") {
          valueType(c);
          tableLimits(c);
        } else if (kind === "global") {
          valueType(c);
          c.byte(); // mutability
        } else {
          c.byte(); // tag attribute
          c.uleb();
        }
        imports.push({ module, name, kind });
      }
      if (c.at !== s.end) c.fail("trailing bytes");
    } else if (s.id === SECTION_MEMORY) {
      const c = new Cursor(bytes, s.body, s.end, "memory section");
      const count = c.uleb();
      for (let i = 0; i < count; i++) memories.push(limits(c, false));
      if (c.at !== s.end) c.fail("trailing bytes");
      memorySection = s;
    }
  }
  return { imports, memories, memorySection };
}

export function wasmImports(bytes: Uint8Array): WasmImport[] {
  return scan(bytes).imports;
}

/** Every memory in index order: imported ones first, then those the module defines. */
export function memoryLimits(bytes: Uint8Array): MemoryLimits[] {
  return scan(bytes).memories;
}

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/**
 * Returns a copy whose defined memories have maximum = min(declared maximum, maxPages), adding a
 * maximum where there was none, so memory.grow past the cap returns -1 instead of growing.
 * Imported memories are left alone (the importer decides their limits).
 */
export function capMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  if (!Number.isSafeInteger(maxPages) || maxPages < 0)
    throw new RangeError(`maxPages ${maxPages} is not a page count`);
  const { memories, memorySection } = scan(bytes);
  if (!memorySection) return bytes.slice();
  const payload: number[] = [];
  const defined = memories.filter(m => !m.imported);
  payload.push(...uleb(defined.length));
  for (const m of defined) {
    const maximum = Math.min(m.maximum ?? Infinity, maxPages);
    if (m.initial > maximum)
      throw new WasmFormatError(
        `memory needs ${m.initial} initial pages, more than the cap of ${maximum}`,
      );
    payload.push(
      FLAG_HAS_MAX | (m.shared ? FLAG_SHARED : 0) | (m.memory64 ? FLAG_MEMORY64 : 0),
      ...uleb(m.initial),
      ...uleb(maximum),
    );
  }
  const header = [SECTION_MEMORY, ...uleb(payload.length)];
  const before = bytes.subarray(0, memorySection.start);
  const after = bytes.subarray(memorySection.end);
  const out = new Uint8Array(before.length + header.length + payload.length + after.length);
  out.set(before, 0);
  out.set(header, before.length);
  out.set(payload, before.length + header.length);
  out.set(after, before.length + header.length + payload.length);
  return out;
}
