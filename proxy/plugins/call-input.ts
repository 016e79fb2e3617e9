// What one plugin call is about, in the two forms a guest can read it (plugins-sdk/ABI.md): the
// request head as values, for the field/header/metadata host functions a guest calls for what
// it wants, and the ABI's compact buffer, encoded only when the guest asks for all of it
// (input_length / input_copy). Measured (docs/benchmarks.md, "Plugin input encoding"): a plugin
// that reads one header costs 0.2 µs through a host call and 0.9-5 µs through the buffer (4-40
// headers), nearly all of it the encoding; a plugin that reads everything pays for the buffer
// once. Plugins of one request share a CallInput until one of them changes the head.
import { lowerIfNeeded } from "../filters/headers.ts";
import { decodeInput, encodeInput } from "./abi.ts";
import type { Pairs, PluginInput } from "./abi.ts";

/** field_get's numbering */
export const FIELDS = [
  "method",
  "scheme",
  "authority",
  "path",
  "query",
  "client",
  "route",
] as const;

export class CallInput {
  private encoded: Uint8Array | null;
  private value: PluginInput | null;

  private constructor(value: PluginInput | null, encoded: Uint8Array | null) {
    this.value = value;
    this.encoded = encoded;
  }

  static of(head: PluginInput): CallInput {
    return new CallInput(head, null);
  }

  /** From ABI bytes (tests, `rauta plugin test`): decoded only if a host function needs it. */
  static ofBytes(bytes: Uint8Array): CallInput {
    return new CallInput(null, bytes);
  }

  get head(): PluginInput {
    return (this.value ??= decodeInput(this.encoded!));
  }

  /**
   * The head after a plugin changed it (request phase): the values move on and the buffer, if
   * one was made, is dropped. Calls already made encoded theirs before this.
   */
  refresh(path: string, query: string, requestHeaders: Pairs, metadata: Pairs): void {
    const h = this.head;
    h.path = path;
    h.query = query;
    h.requestHeaders = requestHeaders;
    h.metadata = metadata;
    this.encoded = null;
  }

  /** Whether the buffer exists yet (a guest asked for the whole input, or it came as bytes). */
  get encodedYet(): boolean {
    return this.encoded !== null;
  }

  /** The ABI buffer (encoded on first use, then kept). */
  bytes(): Uint8Array {
    return (this.encoded ??= encodeInput(this.value!));
  }

  /** head_info: phase (bits 0-7), flags (8-15: body, truncated), status (16-31). */
  info(): number {
    const h = this.head;
    const flags = (h.body !== undefined ? 1 : 0) | (h.bodyTruncated ? 2 : 0);
    return (h.phase === "request" ? 0 : 1) | (flags << 8) | (h.status << 16);
  }

  field(i: number): string | undefined {
    const name = FIELDS[i];
    return name === undefined ? undefined : this.head[name];
  }

  /** The first value of a header (names are lowercase in the head), undefined when absent. */
  header(list: number, name: string): string | undefined {
    const h = this.head;
    const pairs = list === 0 ? h.requestHeaders : list === 1 ? h.responseHeaders : null;
    if (pairs === null) return undefined;
    const l = lowerIfNeeded(name);
    for (const [k, v] of pairs) if (k === l) return v;
    return undefined;
  }

  meta(key: string): string | undefined {
    for (const [k, v] of this.head.metadata) if (k === key) return v;
    return undefined;
  }
}
