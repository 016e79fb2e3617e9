// HTTP/2 on the wire for the fuzzer (RFC 9113 frames, RFC 7541 HPACK): just enough to write any
// frame, well-formed or not, and to read what a server answers. The HPACK encoder never uses the
// dynamic table unless asked to, so blocks can be cut, reordered and replayed on their own.
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const T = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const F = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer,
  lengthOverride?: number,
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(lengthOverride ?? payload.length, 0, 3);
  h[3] = type & 0xff;
  h[4] = flags & 0xff;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function settings(params: Array<[number, number]>, flags = 0): Buffer {
  const p = Buffer.alloc(params.length * 6);
  params.forEach(([id, v], i) => {
    p.writeUInt16BE(id & 0xffff, i * 6);
    p.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(T.SETTINGS, flags, 0, p);
}

export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** RFC 7541 §5.1 integer with an N-bit prefix; `first` holds the bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** RFC 7541 §5.2 string literal, raw (H=0) or with the H bit set on arbitrary bytes. */
export function hpackString(s: string | Buffer, huffman = false): Buffer {
  const b = typeof s === "string" ? Buffer.from(s, "latin1") : s;
  return Buffer.concat([hpackInt(b.length, 7, huffman ? 0x80 : 0), b]);
}

// static table indices (RFC 7541 Appendix A) used below
export const S = {
  authority: 1,
  methodGet: 2,
  methodPost: 3,
  path: 4,
  pathRoot: 4,
  schemeHttp: 6,
  status200: 8,
} as const;

/** Literal field without indexing, new name (0x00) — or indexed name when `nameIndex` is set. */
export function literal(name: string, value: string | Buffer, nameIndex?: number): Buffer {
  if (nameIndex !== undefined)
    return Buffer.concat([hpackInt(nameIndex, 4, 0x00), hpackString(value)]);
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** Literal with incremental indexing (enters the dynamic table). */
export function literalIndexed(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

export const indexed = (i: number) => hpackInt(i, 7, 0x80);
export const tableSizeUpdate = (n: number) => hpackInt(n, 5, 0x20);

/** A request header block: pseudo-headers first, then `extra` fields, all literal/static. */
export function requestBlock(o: {
  method?: string;
  path: string;
  authority?: string;
  scheme?: string;
  extra?: Array<[string, string]>;
}): Buffer {
  const parts: Buffer[] = [];
  const method = o.method ?? "GET";
  if (method === "GET") parts.push(indexed(S.methodGet));
  else if (method === "POST") parts.push(indexed(S.methodPost));
  else parts.push(literal(":method", method, 2));
  parts.push(
    o.scheme === undefined || o.scheme === "http"
      ? indexed(S.schemeHttp)
      : literal(":scheme", o.scheme, 6),
  );
  parts.push(literal(":path", o.path, S.path));
  parts.push(literal(":authority", o.authority ?? "x", S.authority));
  for (const [k, v] of o.extra ?? []) parts.push(literal(k, v));
  return Buffer.concat(parts);
}

export interface ServerFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** Cuts what a server sent into frames; `rest` is an incomplete tail, `error` a broken one. */
export function readFrames(buf: Buffer): {
  frames: ServerFrame[];
  rest: Buffer;
  error: string | null;
} {
  const frames: ServerFrame[] = [];
  let i = 0;
  while (buf.length - i >= 9) {
    const len = buf.readUIntBE(i, 3);
    if (len > 16_777_215) return { frames, rest: buf.subarray(i), error: "frame length" };
    if (buf.length - i < 9 + len) break;
    frames.push({
      type: buf[i + 3]!,
      flags: buf[i + 4]!,
      stream: buf.readUInt32BE(i + 5) & 0x7fffffff,
      payload: buf.subarray(i + 9, i + 9 + len),
    });
    i += 9 + len;
  }
  return { frames, rest: buf.subarray(i), error: null };
}
