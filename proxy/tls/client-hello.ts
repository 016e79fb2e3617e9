// The TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), read without terminating: the server
// name (RFC 6066 §3) and ALPN protocols (RFC 7301) a passthrough listener routes by. Pure and
// defensive: any length that points outside what arrived, a record that is not a handshake, or
// a hello larger than MAX_CLIENT_HELLO is "invalid", never an exception or an out-of-bounds read.
// A hello may span several records (post-quantum key shares make it ~1.8 KB and larger ones
// exist); "incomplete" asks for more bytes.

/** Bytes a ClientHello may take, records included (OpenSSL's own default limit is 16 KiB + headers). */
export const MAX_CLIENT_HELLO = 64 * 1024;

export type ClientHelloResult =
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  | { kind: "hello"; serverName: string | null; alpn: string[] };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
// RFC 1123 names as SNI carries them (no IP literals, RFC 6066 §3), compared lowercase
const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

const invalid = (reason: string): ClientHelloResult => ({ kind: "invalid", reason });

/** Joins the handshake bytes of the records in `data`: null when more records are needed. */
function handshakeBytes(data: Buffer): Buffer | ClientHelloResult {
  const parts: Buffer[] = [];
  let have = 0;
  let offset = 0;
  let needed = -1;
  while (true) {
    if (needed >= 0 && have >= needed) return Buffer.concat(parts, have);
    if (offset + 5 > data.length) return { kind: "incomplete" };
    const type = data[offset]!;
    if (type !== HANDSHAKE)
      return invalid(
        offset === 0
          ? `not a TLS handshake (first byte 0x${type.toString(16).padStart(2, "0")})`
          : "a record other than handshake inside the ClientHello",
      );
    if (data[offset + 1] !== 3) return invalid("unknown TLS record version");
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > 16384 + 2048) return invalid("TLS record length out of range");
    if (offset + 5 + length > data.length) {
      // the first record's fragment may already say how long the hello is
      if (needed < 0 && parts.length === 0 && data.length - offset - 5 >= 4)
        needed = 4 + data.readUIntBE(offset + 6, 3);
      if (needed > MAX_CLIENT_HELLO) return invalid(`ClientHello of ${needed} bytes is too large`);
      return { kind: "incomplete" };
    }
    const fragment = data.subarray(offset + 5, offset + 5 + length);
    parts.push(fragment);
    have += fragment.length;
    offset += 5 + length;
    if (needed < 0 && have >= 4) {
      const first = parts.length === 1 ? fragment : Buffer.concat(parts, have);
      if (first[0] !== CLIENT_HELLO) return invalid("first handshake message is not a ClientHello");
      needed = 4 + first.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO) return invalid(`ClientHello of ${needed} bytes is too large`);
    }
  }
}

/** Reads a ClientHello from the first bytes of a connection. */
export function parseClientHello(data: Buffer): ClientHelloResult {
  if (data.length > MAX_CLIENT_HELLO + 5 * 8)
    return invalid(`more than ${MAX_CLIENT_HELLO} bytes without a complete ClientHello`);
  const joined = handshakeBytes(data);
  if (!Buffer.isBuffer(joined)) return joined;
  const end = 4 + joined.readUIntBE(1, 3);
  let p = 4;
  const need = (n: number) => p + n <= end;
  // legacy_version, random
  if (!need(2 + 32)) return invalid("ClientHello truncated before its random");
  p += 34;
  if (!need(1)) return invalid("ClientHello truncated at session id");
  const sessionId = joined[p]!;
  if (sessionId > 32) return invalid("session id longer than 32 bytes");
  p += 1 + sessionId;
  if (!need(2)) return invalid("ClientHello truncated at cipher suites");
  const suites = joined.readUInt16BE(p);
  if (suites === 0 || suites % 2 !== 0) return invalid("malformed cipher suite list");
  p += 2 + suites;
  if (!need(1)) return invalid("ClientHello truncated at compression methods");
  const compression = joined[p]!;
  if (compression === 0) return invalid("empty compression method list");
  p += 1 + compression;
  if (p > end) return invalid("ClientHello truncated at compression methods");
  // no extensions at all (SSL 3-era clients): no SNI
  if (p === end) return { kind: "hello", serverName: null, alpn: [] };
  if (!need(2)) return invalid("ClientHello truncated at extensions");
  const extEnd = p + 2 + joined.readUInt16BE(p);
  if (extEnd > end) return invalid("extensions run past the ClientHello");
  p += 2;
  let serverName: string | null = null;
  let alpn: string[] = [];
  const seen = new Set<number>();
  while (p < extEnd) {
    if (p + 4 > extEnd) return invalid("truncated extension header");
    const type = joined.readUInt16BE(p);
    const length = joined.readUInt16BE(p + 2);
    const body = p + 4;
    if (body + length > extEnd) return invalid("extension runs past the extension list");
    // RFC 8446 §4.2: an extension type appears at most once
    if (seen.has(type)) return invalid(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = serverNameOf(joined.subarray(body, body + length));
      if (typeof name !== "string" && name !== null) return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const protocols = alpnOf(joined.subarray(body, body + length));
      if (!Array.isArray(protocols)) return protocols;
      alpn = protocols;
    }
    p = body + length;
  }
  return { kind: "hello", serverName, alpn };
}

function serverNameOf(ext: Buffer): string | null | ClientHelloResult {
  if (ext.length === 0) return null; // a server's echo form; a client must not send it empty
  if (ext.length < 2) return invalid("truncated server_name extension");
  const listEnd = 2 + ext.readUInt16BE(0);
  if (listEnd > ext.length) return invalid("server_name list runs past its extension");
  let p = 2;
  while (p < listEnd) {
    if (p + 3 > listEnd) return invalid("truncated server_name entry");
    const type = ext[p]!;
    const length = ext.readUInt16BE(p + 1);
    if (p + 3 + length > listEnd) return invalid("server_name entry runs past its list");
    if (type === 0) {
      const raw = ext.toString("latin1", p + 3, p + 3 + length).toLowerCase();
      // one trailing dot is the absolute form of the same name
      const name = raw.endsWith(".") ? raw.slice(0, -1) : raw;
      if (name.length === 0 || name.length > 253 || !HOSTNAME.test(name))
        return invalid(`server name ${JSON.stringify(raw.slice(0, 80))} is not a hostname`);
      return name;
    }
    p += 3 + length;
  }
  return null;
}

function alpnOf(ext: Buffer): string[] | ClientHelloResult {
  if (ext.length < 2) return invalid("truncated ALPN extension");
  const listEnd = 2 + ext.readUInt16BE(0);
  if (listEnd > ext.length) return invalid("ALPN list runs past its extension");
  const out: string[] = [];
  let p = 2;
  while (p < listEnd) {
    const length = ext[p]!;
    if (length === 0 || p + 1 + length > listEnd) return invalid("malformed ALPN protocol name");
    out.push(ext.toString("latin1", p + 1, p + 1 + length));
    p += 1 + length;
  }
  return out;
}
