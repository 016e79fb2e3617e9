// TLS ClientHellos built byte by byte (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2, RFC 6066 §3 SNI,
// RFC 7301 ALPN) and fast-check arbitraries around them: SNI edge cases (empty, very long, IP
// literal, non-ASCII, NUL, several entries, unknown name type), ALPN lists, truncated and
// fragmented hellos, mutated bytes, garbage, SSLv2 and plain HTTP on the TLS port.
import fc from "fast-check";
import crypto from "node:crypto";
import { mutate, split } from "./http1-grammar.ts";

export interface TlsCase {
  writes: Buffer[];
  /** the server name offered, when the hello is intact and has exactly one host_name entry */
  sni: string | null;
  /** the hello is complete and unmutated: the server must answer it (handshake or alert) */
  complete: boolean;
  /** TLS 1.2 only: the certificate the server picks is visible in its first flight */
  tls12: boolean;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), vec16(body)]);

export type SniEntry = { type: number; name: Buffer };

export interface HelloSpec {
  tls13: boolean;
  /** null: no server_name extension at all */
  sni: SniEntry[] | null;
  alpn: string[] | null;
  ciphers: number[];
  compression: number[];
  sessionId: number;
  extraExtension: Buffer | null;
}

// a fixed X25519 key share: the fuzzer never finishes a handshake, it only needs a valid hello
const X25519 = crypto
  .generateKeyPairSync("x25519")
  .publicKey.export({ type: "spki", format: "der" })
  .subarray(-32);

export function clientHello(h: HelloSpec): Buffer {
  const exts: Buffer[] = [];
  if (h.sni !== null) {
    const list = Buffer.concat(
      h.sni.map(e => Buffer.concat([Buffer.from([e.type]), vec16(e.name)])),
    );
    exts.push(ext(0x0000, vec16(list)));
  }
  exts.push(ext(0x000a, vec16(Buffer.concat([u16(0x001d), u16(0x0017)])))); // supported_groups
  exts.push(ext(0x000b, Buffer.from([1, 0]))); // ec_point_formats: uncompressed
  exts.push(ext(0x000d, vec16(Buffer.concat([u16(0x0403), u16(0x0804), u16(0x0401)])))); // signature_algorithms
  if (h.alpn !== null) {
    const names = Buffer.concat(
      h.alpn.map(p => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])),
    );
    exts.push(ext(0x0010, vec16(names)));
  }
  if (h.tls13) {
    exts.push(ext(0x002b, Buffer.from([4, 0x03, 0x04, 0x03, 0x03]))); // supported_versions
    exts.push(ext(0x0033, vec16(Buffer.concat([u16(0x001d), vec16(X25519)])))); // key_share
  }
  if (h.extraExtension !== null) exts.push(h.extraExtension);
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 0x42), // client random: fixed, so a case replays byte for byte
    Buffer.concat([Buffer.from([h.sessionId]), Buffer.alloc(h.sessionId, 7)]),
    vec16(Buffer.concat(h.ciphers.map(u16))),
    Buffer.concat([Buffer.from([h.compression.length]), Buffer.from(h.compression)]),
    vec16(Buffer.concat(exts)),
  ]);
  return Buffer.concat([Buffer.from([0x01]), u24(body.length), body]);
}

/** Handshake bytes into TLS records of at most `size` bytes each (a fragmented hello). */
export function records(handshake: Buffer, size = 16_384): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += size) {
    const part = handshake.subarray(i, i + size);
    out.push(Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(part.length), part]));
  }
  return Buffer.concat(out);
}

const TLS12_ECDSA = [0xc02b, 0xc02c, 0xcca9];
const TLS13 = [0x1301, 0x1302, 0x1303];

const sniName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "a.example",
      "A.Example",
      "a.example.",
      "canary.test",
      "other.example",
      "*.example",
      "a..example",
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "",
      "127.0.0.1",
      "::1",
      "[::1]",
      "x".repeat(255),
      `${"l".repeat(63)}.`.repeat(4),
      "y".repeat(2000),
      "caf\u00e9.example",
      "\u4f8b\u3048.example",
      "a\u0000.example",
      "a example",
      "-a.example",
    ),
  },
);

const sni = fc.oneof(
  { weight: 2, arbitrary: fc.constant<SniEntry[] | null>(null) },
  {
    weight: 12,
    arbitrary: sniName.map<SniEntry[]>(n => [{ type: 0, name: Buffer.from(n, "utf8") }]),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(sniName, sniName, fc.constantFrom(0, 0, 1, 255))
      .map<SniEntry[]>(([a, b, type]) => [
        { type: 0, name: Buffer.from(a, "utf8") },
        { type, name: Buffer.from(b, "utf8") },
      ]),
  },
  { weight: 1, arbitrary: fc.constant<SniEntry[]>([{ type: 1, name: Buffer.from("a.example") }]) },
  { weight: 1, arbitrary: fc.constant<SniEntry[]>([]) },
);

// each field mostly well-formed, so that most hellos get as far as the certificate choice
const mostly = <V>(good: fc.Arbitrary<V>, bad: fc.Arbitrary<V>) =>
  fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad });

const alpn = mostly<string[] | null>(
  fc.constantFrom<string[] | null>(null, ["h2", "http/1.1"], ["http/1.1"], ["h2"]),
  fc.constantFrom<string[] | null>(
    ["spdy/3", "x"],
    [""],
    Array.from({ length: 100 }, (_, i) => `p${i}`),
  ),
);

const spec: fc.Arbitrary<HelloSpec> = fc.record({
  tls13: fc.boolean(),
  sni,
  alpn,
  ciphers: mostly(
    fc.constant<number[]>([]),
    fc.constantFrom<number[]>([0x0000], [0xffff, 0x1234], [0x0005]),
  ),
  compression: mostly<number[]>(fc.constant([0]), fc.constantFrom([1], [], [1, 0])),
  sessionId: mostly(fc.constantFrom(0, 32), fc.constant(33)),
  extraExtension: mostly(
    fc.constant<Buffer | null>(null),
    fc.constantFrom<Buffer | null>(
      Buffer.from([0xfa, 0xfa, 0x00, 0x00]),
      Buffer.from([0x00, 0x00, 0x00, 0x00]),
      Buffer.from([0x00, 0x2b, 0x00, 0x03, 0x02, 0x7f, 0x7f]),
      Buffer.from([0x00, 0x10, 0xff, 0xff]),
    ),
  ),
});

const hello: fc.Arbitrary<TlsCase> = fc
  .record({
    spec,
    fragment: fc.constantFrom(16_384, 16_384, 16_384, 40, 7, 1),
    truncate: fc.oneof(
      { weight: 5, arbitrary: fc.constant(-1) },
      { weight: 1, arbitrary: fc.nat() },
    ),
    mutations: fc.oneof(
      { weight: 4, arbitrary: fc.constant([] as Array<{ op: string; at: number; byte: number }>) },
      {
        weight: 1,
        arbitrary: fc.array(
          fc.record({
            op: fc.constantFrom("insert", "replace", "delete"),
            at: fc.nat(),
            byte: fc.constantFrom(0, 1, 0x16, 0x7f, 0xff),
          }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
      },
    ),
    trailing: fc.constantFrom("", "", "", "GET / HTTP/1.1\r\n\r\n", "\x15\x03\x03\x00\x02\x02\x28"),
    cuts: fc.array(fc.nat(), { maxLength: 2 }),
  })
  .map(c => {
    const s = c.spec;
    const ciphers =
      s.ciphers.length > 0 ? s.ciphers : s.tls13 ? [...TLS13, ...TLS12_ECDSA] : TLS12_ECDSA;
    let bytes = records(clientHello({ ...s, ciphers }), c.fragment);
    const truncated = c.truncate >= 0 && c.truncate % bytes.length < bytes.length - 1;
    if (truncated) bytes = bytes.subarray(0, Math.max(1, c.truncate % bytes.length));
    bytes = mutate(bytes, c.mutations);
    bytes = Buffer.concat([bytes, Buffer.from(c.trailing, "latin1")]);
    const intact = !truncated && c.mutations.length === 0;
    const one =
      s.sni !== null && s.sni.length === 1 && s.sni[0]!.type === 0
        ? s.sni[0]!.name.toString("utf8")
        : null;
    return {
      writes: split(bytes, c.cuts),
      sni: intact ? one : null,
      complete: intact,
      tls12: !s.tls13,
    };
  });

const other: fc.Arbitrary<TlsCase> = fc.oneof(
  fc
    .uint8Array({ minLength: 1, maxLength: 300 })
    .map(b => ({ writes: [Buffer.from(b)], sni: null, complete: false, tls12: false })),
  fc
    .constantFrom(
      "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "\x16\x03\x01\xff\xff\x01",
      "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10",
      "\x16\x03\x01\x00\x00",
      "\x17\x03\x03\x00\x05hello",
      "\x15\x03\x03\x00\x02\x02\x28",
    )
    .map(s => ({ writes: [Buffer.from(s, "latin1")], sni: null, complete: false, tls12: false })),
);

export const tlsCase: fc.Arbitrary<TlsCase> = fc.oneof(
  { weight: 4, arbitrary: hello },
  { weight: 1, arbitrary: other },
);
