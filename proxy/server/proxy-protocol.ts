// The PROXY protocol (HAProxy's spec, v1 text and v2 binary) on a listener: a load balancer in
// TCP mode sends one header before the connection's own bytes, naming the client it accepted.
// That client, not the load balancer, is then the connection's peer: the address appended to
// X-Forwarded-For, and the client of rate limits, IP lists, hashing, logs and spans.
import { isIP } from "node:net";
import type net from "node:net";

const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from("PROXY ");
// the v1 header's longest form ("PROXY UNKNOWN ffff:…:ffff ffff:…:ffff 65535 65535\r\n")
const V1_MAX = 107;
// v2: the signature, version/command, family/protocol, a 16-bit length; its addresses and TLVs
// may fill the rest (a TLV-heavy load balancer sends a few hundred bytes at most)
const V2_MAX = 16 + 4096;

export type ProxyHeader =
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  /** source: the client's address; null: a LOCAL/UNKNOWN header (health checks): use the peer */
  | { kind: "header"; source: string | null; length: number }
  /** optional mode, and the bytes cannot be a PROXY header: the connection's own data */
  | { kind: "none" };

/** Reads a PROXY header at the start of `data` (the bytes received so far). */
export function parseProxyHeader(data: Buffer, optional: boolean): ProxyHeader {
  if (data.length === 0) return { kind: "incomplete" };
  if (data[0] === V2_SIGNATURE[0] && startsLike(data, V2_SIGNATURE)) {
    if (data.length < 16) return { kind: "incomplete" };
    return parseV2(data);
  }
  if (startsLike(data, V1_PREFIX)) {
    if (data.length < V1_PREFIX.length) return { kind: "incomplete" };
    return parseV1(data);
  }
  return optional
    ? { kind: "none" }
    : { kind: "invalid", reason: "the connection does not start with a PROXY protocol header" };
}

/** Whether data could still be the start of prefix (as far as it goes). */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(data: Buffer): ProxyHeader {
  const end = data.indexOf("\r\n");
  if (end === -1)
    return data.length >= V1_MAX
      ? { kind: "invalid", reason: "PROXY v1 header longer than 107 bytes" }
      : { kind: "incomplete" };
  if (end + 2 > V1_MAX) return { kind: "invalid", reason: "PROXY v1 header longer than 107 bytes" };
  const parts = data.toString("latin1", 0, end).split(" ");
  const length = end + 2;
  if (parts[1] === "UNKNOWN") return { kind: "header", source: null, length };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6"))
    return {
      kind: "invalid",
      reason: `malformed PROXY v1 header ${JSON.stringify(parts.join(" "))}`,
    };
  const [, family, src, dst, sport, dport] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const want = family === "TCP4" ? 4 : 6;
  if (isIP(src) !== want || isIP(dst) !== want)
    return { kind: "invalid", reason: `PROXY v1 ${family} header with addresses ${src} ${dst}` };
  if (!validPort(sport) || !validPort(dport))
    return { kind: "invalid", reason: `PROXY v1 header with ports ${sport} ${dport}` };
  return { kind: "header", source: src, length };
}

const validPort = (p: string) => /^(0|[1-9]\d{0,4})$/.test(p) && Number(p) <= 65535;

function parseV2(data: Buffer): ProxyHeader {
  const verCmd = data[12]!;
  if (verCmd >> 4 !== 2)
    return { kind: "invalid", reason: `PROXY v2 header of version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: "invalid", reason: `PROXY v2 header with command ${command}` };
  const len = data.readUInt16BE(14);
  const length = 16 + len;
  if (length > V2_MAX) return { kind: "invalid", reason: `PROXY v2 header of ${length} bytes` };
  if (data.length < length) return { kind: "incomplete" };
  // LOCAL: the load balancer's own connection (a health check): the peer is the peer
  if (command === 0) return { kind: "header", source: null, length };
  const family = data[13]! >> 4;
  const body = data.subarray(16, length);
  if (family === 1) {
    if (body.length < 12) return { kind: "invalid", reason: "PROXY v2 IPv4 header too short" };
    return { kind: "header", source: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`, length };
  }
  if (family === 2) {
    if (body.length < 36) return { kind: "invalid", reason: "PROXY v2 IPv6 header too short" };
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { kind: "header", source: compactIpv6(groups), length };
  }
  // AF_UNSPEC or AF_UNIX: no address we could use
  return { kind: "header", source: null, length };
}

// "2001:db8:0:0:0:0:0:1" → "2001:db8::1", and an IPv4-mapped address as IPv4 (as a socket's
// remoteAddress is compared elsewhere)
function compactIpv6(groups: string[]): string {
  if (groups.slice(0, 5).every(g => g === "0") && groups[5] === "ffff") {
    const a = parseInt(groups[6]!, 16);
    const b = parseInt(groups[7]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

// The client a PROXY header named, per accepted connection. Keyed by the connection's own
// addresses, which every wrapper of the socket (TLS, an HTTP/2 session's request proxy) reports
// the same: a WeakMap on the raw socket would not be found from those.
const proxiedPeers = new Map<string, string>();

const connectionKey = (s: Pick<net.Socket, "remoteAddress" | "remotePort" | "localPort">) =>
  `${s.remoteAddress}|${s.remotePort}|${s.localPort}`;

/** The client the PROXY header of this request's connection named; undefined: none. */
export function proxiedPeer(
  s: Pick<net.Socket, "remoteAddress" | "remotePort" | "localPort"> | null | undefined,
): string | undefined {
  // (no lookup, no string building, when no listener speaks the protocol)
  if (proxiedPeers.size === 0 || s == null) return undefined;
  return proxiedPeers.get(connectionKey(s));
}

export interface ProxyProtocolOptions {
  optional: boolean;
  timeoutMs: number;
  /** why a connection was refused (a metric) */
  onInvalid: (reason: string) => void;
}

/**
 * Reads the header off a new connection, then hands the socket on (paused, with the bytes after
 * the header put back) — or closes it when the header is missing, malformed or late.
 */
export function acceptProxyProtocol(
  socket: net.Socket,
  opts: ProxyProtocolOptions,
  next: (socket: net.Socket) => void,
): void {
  let buffered = Buffer.alloc(0);
  const fail = (reason: string) => {
    opts.onInvalid(reason);
    socket.destroy();
  };
  const timer = setTimeout(() => fail("timeout"), opts.timeoutMs);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const h = parseProxyHeader(buffered, opts.optional);
    if (h.kind === "incomplete") return;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.pause();
    if (h.kind === "invalid") return fail(h.reason);
    const rest = h.kind === "header" ? buffered.subarray(h.length) : buffered;
    if (h.kind === "header" && h.source !== null) {
      const key = connectionKey(socket);
      proxiedPeers.set(key, h.source);
      socket.once("close", () => proxiedPeers.delete(key));
    }
    if (rest.length > 0) socket.unshift(rest);
    next(socket);
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
  socket.once("close", () => clearTimeout(timer));
}
