// Downstream sockets. One ListenerServer per (protocol, address, port) of the config:
//   HTTP  — a net.Server that looks at the first bytes of each connection: the HTTP/2 preface
//           goes to an h2c (prior knowledge) server, everything else to the HTTP/1.1 server.
//   HTTPS — an http2 secure server with ALPN h2 + http/1.1 and SNICallback choosing the
//           certificate from the current generation (rotation needs no restart).
//   TLS listeners on the socket (TLSRoutes, alone or beside HTTPS) — a net.Server that reads
//           each ClientHello (proxy/tls/client-hello.ts) without answering it and goes by its
//           SNI (config Listener.streams): Passthrough splices the bytes to the backend,
//           Terminate completes the handshake here and splices the plaintext, HTTP hands the
//           connection to the HTTPS server. A hello that is malformed, too large or too slow
//           closes the connection.
// Servers outlive generations: they route with whatever generation is current when a request
// arrives. Parser limits (header size/count, header and request timeouts) and clear 400/408/431
// answers to malformed requests are set here; llhttp (strict mode) rejects Content-Length +
// Transfer-Encoding conflicts and malformed chunking before any routing.
import { createHash } from "node:crypto";
import net from "node:net";
import http from "node:http";
import http2 from "node:http2";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { handleRequest, handleUpgrade, errorBody, isHttp2, requestContext } from "./handler.ts";
import { DEFAULT_H2_GUARD, guardSession, h2Settings, isRefused } from "./h2-guard.ts";
import type { H2GuardOptions } from "./h2-guard.ts";
import type {
  ProxyCore,
  ListenerContext,
  DownstreamRequest,
  DownstreamResponse,
} from "./handler.ts";
import type { Listener } from "../config/schema.ts";
import { endSocketWithInternalError, endWithInternalError, reportContained } from "./contain.ts";
import { clientCertificateOptions, verifyingCa } from "../tls/client-validation.ts";
import { parseClientHello } from "../tls/client-hello.ts";
import { splice } from "./tcp-proxy.ts";
import { acceptProxyProtocol } from "./proxy-protocol.ts";
import type { ClientValidation } from "../tls/client-validation.ts";

export interface ServerLimits {
  /** Max bytes of the request head (HTTP/1.1) / header list (HTTP/2). */
  maxHeaderSize: number;
  /** Time allowed to receive the request head (slowloris). */
  headersTimeoutMs: number;
  /** Time allowed to receive the whole request. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How often Node checks the two timeouts above. */
  connectionsCheckingIntervalMs: number;
  /** Idle downstream connection timeout (HTTP/2 sessions, sniffing). */
  idleTimeoutMs: number;
  /** Serve h2c (prior knowledge) on plain-text listeners. */
  h2c: boolean;
  /** HTTP/2 stream limits and abuse detection (h2-guard.ts). */
  h2?: Partial<H2GuardOptions>;
  /** TLS listeners: time a client has to send its whole ClientHello */
  clientHelloTimeoutMs: number;
  /** TLS-routed connections: closed after this long with no bytes either way (0: never) */
  streamIdleTimeoutMs: number;
  streamConnectTimeoutMs: number;
  /** open connections a socket with TLS listeners takes; more are dropped at accept */
  maxStreamConnections: number;
  /** request header fields (the handler answers 431 beyond); absent: the handler's default */
  maxHeaderCount?: number;
}

/**
 * A socket's limits under its listener's client settings (ClientTrafficPolicy). Timeouts and the
 * header count apply to a listening server (applyLimits); the header size and HTTP/2 settings
 * are fixed when it binds, so they are part of its key.
 */
export function socketLimits(base: ServerLimits, c: Listener["client"]): ServerLimits {
  if (c === undefined) return base;
  return {
    ...base,
    ...(c.maxHeaderBytes !== undefined ? { maxHeaderSize: c.maxHeaderBytes } : {}),
    ...(c.requestHeadersTimeoutMs !== undefined
      ? { headersTimeoutMs: c.requestHeadersTimeoutMs }
      : {}),
    ...(c.requestTimeoutMs !== undefined ? { requestTimeoutMs: c.requestTimeoutMs } : {}),
    ...(c.idleTimeoutMs !== undefined
      ? { keepAliveTimeoutMs: c.idleTimeoutMs, idleTimeoutMs: c.idleTimeoutMs }
      : {}),
    ...(c.maxHeaderCount !== undefined ? { maxHeaderCount: c.maxHeaderCount } : {}),
    ...(c.http2
      ? {
          h2: {
            ...base.h2,
            ...(c.http2.maxConcurrentStreams !== undefined
              ? { maxConcurrentStreams: c.http2.maxConcurrentStreams }
              : {}),
            ...(c.http2.initialStreamWindowBytes !== undefined
              ? { streamWindowBytes: c.http2.initialStreamWindowBytes }
              : {}),
            ...(c.http2.initialConnectionWindowBytes !== undefined
              ? { connectionWindowBytes: c.http2.initialConnectionWindowBytes }
              : {}),
          },
        }
      : {}),
  };
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 30_000,
  connectionsCheckingIntervalMs: 1_000,
  idleTimeoutMs: 120_000,
  h2c: true,
  clientHelloTimeoutMs: 10_000,
  // Envoy's tcp_proxy default: long-lived quiet connections (databases) are normal behind TLS
  streamIdleTimeoutMs: 3_600_000,
  streamConnectTimeoutMs: 5_000,
  maxStreamConnections: 10_000,
};

// TLS alert (RFC 8446 §6), as a TLS 1.2 record, for a client whose hello cannot be read
const alert = (description: number) => Buffer.from([21, 3, 3, 0, 2, 2, description]);
const DECODE_ERROR = alert(50);

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

type ClientError = Error & {
  code?: string;
  reason?: string;
  rawPacket?: unknown;
  bytesParsed?: number;
};

// RFC 9112 §3: a request-target longer than we parse is answered 414. llhttp counts the
// request-line in the header size limit; the overflow is in the request-line when the line being
// parsed at the failure point starts with a method and a space (a field line starts with a name
// and a colon, a continuation with whitespace).
function requestLineOverflow(err: ClientError): boolean {
  const raw = err.rawPacket;
  const at = err.bytesParsed;
  if (!Buffer.isBuffer(raw) || typeof at !== "number" || at <= 0) return false;
  const end = Math.min(at, raw.length);
  const start = raw.lastIndexOf(10, end - 1) + 1;
  return /^[A-Z-]+ [^ ]/.test(raw.subarray(start, Math.min(end, start + 32)).toString("latin1"));
}

const RAW_REASONS: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
};

function rawResponse(status: number, detail: string): string {
  const body = errorBody(status, detail);
  return `HTTP/1.1 ${status} ${RAW_REASONS[status] ?? "Error"}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function clientErrorResponse(err: ClientError): string {
  let status = 400;
  const why = err.reason ?? err.message;
  let detail = `malformed request (${err.code ?? "error"}: ${why})`;
  if (err.code === "HPE_HEADER_OVERFLOW" && requestLineOverflow(err)) {
    status = 414;
    detail = "request-line (request target) too long";
  } else if (err.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    detail = "request header section too large (size or number of fields)";
  } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "HPE_HEADERS_TIMEOUT") {
    status = 408;
    detail = "request not received in time";
  } else if (/content-length/i.test(why) && /transfer-encoding/i.test(why)) {
    detail = `ambiguous framing: ${why}`;
  } else if (
    err.code === "HPE_INVALID_CHUNK_SIZE" ||
    err.code === "HPE_INVALID_TRANSFER_ENCODING"
  ) {
    detail = `malformed chunked body or Transfer-Encoding (${why})`;
  }
  return rawResponse(status, detail);
}

// What Node keeps on an HTTP/1.1 server socket: the response being written (pipelined ones wait
// behind it) and the request being parsed. Internal but long-standing fields; without them the
// error is answered at once, as Node itself does.
type Http1Socket = Duplex & {
  _httpMessage?: http.ServerResponse | null;
  parser?: { incoming?: http.IncomingMessage | null } | null;
};

const answeringError = new WeakSet<Duplex>();
/** HTTP/1.1 connections whose next response is their last (it says "connection: close") */
const closing = new WeakSet<Duplex>();

function onClientError(err: ClientError, socket: Duplex) {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  // a TLS handshake failure (the secure server reports them here too): no HTTP to answer in
  if (
    err.code?.startsWith("ERR_SSL_") ||
    err.code?.startsWith("ERR_TLS_") ||
    (err as { library?: string }).library === "SSL routines"
  ) {
    socket.destroy();
    return;
  }
  if (answeringError.has(socket)) return; // the parser reports the same error for each later read
  const s = socket as Http1Socket;
  // `broken`: the request the bad bytes belong to, when its head was fine (it was handed to us
  // already). While a response owns the socket (until it has finished; Node then hands the
  // socket to the next one), the error is answered after the responses due before it, in order
  // (RFC 9112 §9.3.2), never written into one of them.
  const incoming = s.parser?.incoming;
  const broken = incoming != null && !incoming.complete ? incoming : null;
  if (s._httpMessage != null || broken !== null) {
    answeringError.add(socket);
    socket.pause();
    // bytes after "Connection: close" are not processed at all (§9.6): that response ends it
    if (err.code === "HPE_CLOSED_CONNECTION" && broken === null) return;
    afterResponses(s, broken, () => socket.end(clientErrorResponse(err)));
    return;
  }
  answeringError.add(socket);
  socket.end(clientErrorResponse(err));
}

/**
 * Runs `then` once the responses ahead have finished: all of them, or those before the response
 * to `stop` (the request whose own bytes went wrong: `then` answers it, unless its answer has
 * started — then the connection is cut — or is complete already — then it just ends, a second
 * answer to one request would be read as the answer to the next).
 */
function afterResponses(s: Http1Socket, stop: http.IncomingMessage | null, then: () => void) {
  const res = s._httpMessage;
  if (res == null) {
    if (stop !== null) s.end();
    else if (s.writable) then();
    else s.destroy();
    return;
  }
  if (stop !== null && res.req === stop) {
    if (res.writableEnded) res.once("finish", () => s.end());
    else if (res.headersSent) s.destroy();
    else if (s.writable) then();
    else s.destroy();
    return;
  }
  let called = false;
  const next = () => {
    if (called) return;
    called = true;
    // Node hands the socket to the next pipelined response on that same "finish"
    setImmediate(afterResponses, s, stop, then);
  };
  res.once("finish", next);
  res.once("close", next);
}

/** RFC 9113 §6.5.2: a header list's size is its names and values plus 32 octets per field. */
function headerListSize(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) n += raw[i]!.length + raw[i + 1]!.length + 32;
  return n;
}

export class ListenerServer {
  readonly key: string;
  readonly ctx: ListenerContext;
  readonly protocol: "HTTP" | "HTTPS" | "TLS";
  /** TLS listeners share the socket: connections are dispatched by SNI first */
  private readonly byServerName: boolean;
  private terminator: tls.Server | null = null;
  private readonly core: ProxyCore;
  private limits: ServerLimits;
  private readonly h2Guard: H2GuardOptions;
  private outer: net.Server | null = null;
  private h1: http.Server | null = null;
  private h2: http2.Http2Server | http2.Http2SecureServer | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.Http2Session>();
  bindAddress: string;

  constructor(core: ProxyCore, listener: Listener, limits: ServerLimits, bindAddress: string) {
    this.core = core;
    this.limits = limits;
    this.h2Guard = { ...DEFAULT_H2_GUARD, ...limits.h2 };
    this.protocol = listener.protocol;
    this.bindAddress = bindAddress;
    this.byServerName = listener.streams !== undefined;
    this.key = ListenerServer.keyOf(listener);
    this.clientValidation = listener.tls?.clientValidation ?? null;
    this.proxyProtocol = listener.client?.proxyProtocol ?? null;
    this.ctx = {
      socket: `${listener.address}:${listener.port}`,
      scheme: listener.protocol === "HTTP" ? "http" : "https",
      port: listener.port,
    };
  }

  // Client-certificate validation is a server option (requestCert, rejectUnauthorized) that
  // cannot change on a listening server: a change binds a new one.
  static keyOf(l: Listener): string {
    const v = l.tls?.clientValidation;
    const mtls = v
      ? `|${v.mode}:${createHash("sha256").update(v.caCertificates).digest("hex").slice(0, 16)}`
      : "";
    const c = l.client;
    const fixed =
      c?.maxHeaderBytes !== undefined || c?.http2 !== undefined
        ? `|c:${c.maxHeaderBytes ?? ""}:${JSON.stringify(c.http2 ?? {})}`
        : "";
    // the PROXY protocol puts a reader in front of every server of the socket
    const pp = c?.proxyProtocol ? (c.proxyProtocol.optional ? "|pp?" : "|pp") : "";
    return `${l.protocol}|${l.address}:${l.port}${mtls}${l.streams ? "|sni" : ""}${fixed}${pp}`;
  }

  /** Timeouts and the header count of a new config, on the servers already listening. */
  applyLimits(limits: ServerLimits): void {
    this.limits = { ...limits, maxHeaderSize: this.limits.maxHeaderSize, h2: this.limits.h2 };
    for (const server of [this.h1, this.h2 as unknown as http.Server | null]) {
      if (server === null) continue;
      server.headersTimeout = limits.headersTimeoutMs;
      server.requestTimeout = limits.requestTimeoutMs;
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    }
    for (const server of [this.h1, this.h2 as unknown as http.Server | null])
      if (server !== null) server.maxHeadersCount = this.maxHeaders() + 1;
  }

  private maxHeaders(): number {
    return this.limits.maxHeaderCount ?? this.core.options.maxHeaderCount;
  }

  private readonly clientValidation: ClientValidation | null;
  private readonly proxyProtocol: { optional: boolean } | null;

  /**
   * A plain TCP server in front of the socket's servers, handing each connection to `accept`;
   * with the PROXY protocol, after reading the header (the socket is then paused with the bytes
   * after the header put back, and `resume` restarts it for an `accept` that reads it through
   * "data" events rather than taking the buffered bytes itself).
   */
  private outerServer(
    accept: (socket: net.Socket) => void,
    resume: boolean,
    options: net.ServerOpts = {},
  ): net.Server {
    const pp = this.proxyProtocol;
    const onConnection =
      pp === null
        ? accept
        : (socket: net.Socket) =>
            acceptProxyProtocol(
              socket,
              {
                optional: pp.optional,
                timeoutMs: this.limits.headersTimeoutMs,
                onInvalid: reason =>
                  this.core.metrics.proxyProtocolErrors
                    .labels(reason === "timeout" ? "timeout" : "invalid")
                    .inc(),
              },
              s => {
                accept(s);
                if (resume) s.resume();
              },
            );
    const outer = net.createServer({ noDelay: true, ...options }, onConnection);
    this.outer = outer;
    return outer;
  }

  /**
   * Listens with `server` itself, or (PROXY protocol) with an outer server that reads the header
   * and then hands the connection to `server`.
   */
  private listenWith(
    server: http.Server | http2.Http2SecureServer,
    resume: boolean,
  ): Promise<void> {
    if (this.proxyProtocol === null) return listenOn(server, this.bindAddress, this.ctx.port);
    const outer = this.outerServer(socket => server.emit("connection", socket), resume);
    // a server that never listens itself starts its request-timeout checks on "listening"
    server.emit("listening");
    return listenOn(outer, this.bindAddress, this.ctx.port);
  }

  // The two entry points of request handling: whatever throws below them ends that request or
  // connection (server/contain.ts), never the worker.
  private onRequest = (req: DownstreamRequest, res: DownstreamResponse) => {
    // HTTP/2: next turn, so a stream the client resets in the same read costs nothing (h2-guard.ts)
    if (isHttp2(req)) setImmediate(this.onH2Request, req, res);
    else this.onH1Request(req, res as http.ServerResponse);
  };
  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse) {
    const socket = req.socket;
    // an answer that closes the connection is on its way: what the client pipelined after it is
    // not processed (its response could never be delivered; RFC 9112 §9.6), it goes with the
    // connection
    if (closing.has(socket)) return;
    // RFC 9112 §9.6: "close" ends the connection after this response, whatever else Connection
    // says (llhttp keeps an HTTP/1.0 one alive when it also lists keep-alive)
    if (
      req.httpVersionMinor === 0 &&
      /(?:^|[\s,])close(?:$|[\s,])/i.test(req.headers.connection ?? "")
    ) {
      res.shouldKeepAlive = false;
      closing.add(socket);
    }
    this.handle(req, res);
    if ((res as { _last?: boolean })._last === true) closing.add(socket);
  }
  // Node answers "Expect: 100-continue" itself, but the 100 of a pipelined request waiting behind
  // another response is buffered, and its response head, when the body is a Buffer, is put
  // before it: "200 … 100 Continue … body". Here the 100 goes out when the response gets the
  // connection, or not at all once its head is set (RFC 9110 §10.1.1 lets a server omit it).
  private onCheckContinue = (req: DownstreamRequest, res: DownstreamResponse) => {
    if (isHttp2(req)) (res as http2.Http2ServerResponse).writeContinue();
    else {
      const r = res as http.ServerResponse;
      if ((req.socket as Http1Socket)._httpMessage === r) r.writeContinue();
      else {
        // Node closes the connection after a final answer sent without its 100; that would drop
        // the answers to what the client pipelined behind (it did not wait for a 100)
        (r as { _expect_continue?: boolean })._expect_continue = false;
        r.once("socket", () => {
          if (!r.headersSent) r.writeContinue();
        });
      }
    }
    this.onRequest(req, res);
  };
  // Node answers an expectation other than 100-continue with 417 itself, before "request" (so
  // before route() checks the framing) and keeps the connection, reading the unread body by
  // whatever framing the request declared. Here that 417 closes the connection instead.
  private onCheckExpectation = (req: DownstreamRequest, res: DownstreamResponse) => {
    const body = errorBody(417, "only the 100-continue expectation is supported");
    const headers: Record<string, string | number> = {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    };
    if (!isHttp2(req)) {
      closing.add(req.socket);
      headers.connection = "close";
    }
    (res as http.ServerResponse).writeHead(417, headers);
    res.end(body);
  };
  private onH2Request = (req: DownstreamRequest, res: DownstreamResponse) => {
    const stream = (req as http2.Http2ServerRequest).stream;
    if (stream.destroyed || isRefused(stream.session)) return;
    // the SETTINGS_MAX_HEADER_LIST_SIZE we advertise is only advice to the client (nghttp2 does
    // not enforce it): a larger header list is answered 431 like an HTTP/1.1 head over the limit
    // (RFC 9113 §10.5.1), instead of reaching a backend that would refuse it
    if (headerListSize(req.rawHeaders) > this.limits.maxHeaderSize) {
      const body = errorBody(431, "request header list too large");
      const r = res as http2.Http2ServerResponse;
      r.writeHead(431, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      r.end(body);
      return;
    }
    this.handle(req, res);
  };
  private handle(req: DownstreamRequest, res: DownstreamResponse) {
    try {
      handleRequest(this.core, this.ctx, req, res);
    } catch (err) {
      reportContained(this.core, "request", err, requestContext(this.ctx, req));
      endWithInternalError(res as http.ServerResponse);
    }
  }
  private onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // pipelined responses still due on this connection go out first (RFC 9112 §9.3.2); they
    // are on the connection itself (`socket` may be Node's UpgradeStream around it)
    const connection = req.socket as Http1Socket;
    if (connection._httpMessage != null) {
      afterResponses(connection, null, () => this.upgrade(req, socket, head));
      return;
    }
    this.upgrade(req, socket, head);
  };
  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer) {
    try {
      // Node hands over the socket right after the head: whether the bytes that follow are a
      // body or already the new protocol would be ours to guess (and the backend's, differently:
      // a smuggling vector). A WebSocket handshake has no body; one that declares a body is refused.
      const cl = req.headers["content-length"];
      if (
        (cl !== undefined && !/^0+$/.test(cl)) ||
        req.headers["transfer-encoding"] !== undefined
      ) {
        socket.on("error", () => socket.destroy());
        socket.end(rawResponse(400, "an upgrade request with a body"));
        return;
      }
      // RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request
      if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
        this.asPlainRequest(req, socket);
        return;
      }
      handleUpgrade(this.core, this.ctx, req, socket, head);
    } catch (err) {
      reportContained(this.core, "upgrade", err, requestContext(this.ctx, req));
      endSocketWithInternalError(socket);
    }
  }

  // An HTTP/1.0 request that asked to upgrade (and has no body) is answered as a plain request
  // on the socket Node handed over, then the connection closes.
  private asPlainRequest(req: http.IncomingMessage, socket: Duplex) {
    socket.on("error", () => socket.destroy());
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as net.Socket);
    res.once("finish", () => {
      res.detachSocket(socket as net.Socket);
      socket.end();
    });
    this.handle(req, res);
  }

  // CONNECT (authority-form): RAUTA is not a forward proxy (Node would drop an HTTP/1.1
  // connection). The secure server emits HTTP/2 CONNECT streams here too, with their response.
  private onConnect = (req: DownstreamRequest, out: Duplex | http2.Http2ServerResponse) => {
    const detail = "CONNECT is not supported by the gateway";
    if (isHttp2(req)) {
      const res = out as http2.Http2ServerResponse;
      const body = errorBody(501, detail);
      res.writeHead(501, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const socket = out as Duplex;
    socket.on("error", () => socket.destroy());
    // after the pipelined responses still due (RFC 9112 §9.3.2)
    afterResponses(req.socket as Http1Socket, null, () => {
      if (socket.writable) socket.end(rawResponse(501, detail));
      else socket.destroy();
    });
  };

  private track(socket: net.Socket) {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  private http1Options(): http.ServerOptions {
    const l = this.limits;
    return {
      maxHeaderSize: l.maxHeaderSize,
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.connectionsCheckingIntervalMs,
      insecureHTTPParser: false,
      // route() answers a missing Host (RFC 9112 §3.2) like a duplicate one, as a request of ours
      requireHostHeader: false,
      noDelay: true,
      // parse up to one more than the limit so the handler can answer 431 instead of truncating
      maxHeadersCount: this.maxHeaders() + 1,
    } as http.ServerOptions;
  }

  private watchSession = (session: http2.Http2Session) => {
    guardSession(session, this.h2Guard, this.core.metrics);
    this.sessions.add(session);
    session.once("close", () => this.sessions.delete(session));
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
  };

  async listen(
    sni?: (servername: string) => tls.SecureContext | null,
    defaultPair?: { cert: string; key: string } | null,
  ): Promise<void> {
    const l = this.limits;
    if (this.protocol === "HTTP") {
      const h1 = http.createServer(this.http1Options(), this.onRequest);
      h1.maxHeadersCount = this.maxHeaders() + 1;
      h1.on("clientError", onClientError);
      h1.on("upgrade", this.onUpgrade);
      h1.on("connect", this.onConnect);
      h1.on("checkContinue", this.onCheckContinue);
      h1.on("checkExpectation", this.onCheckExpectation);
      this.h1 = h1;
      if (!l.h2c) {
        h1.on("connection", (s: net.Socket) => this.track(s));
        await this.listenWith(h1, true);
        return;
      }
      const h2 = http2.createServer(
        { settings: h2Settings(this.h2Guard, l.maxHeaderSize), maxSessionMemory: 32 },
        this.onRequest,
      );
      h2.on("session", this.watchSession);
      h2.on("connect", this.onConnect);
      this.h2 = h2;
      const accept = (socket: net.Socket) => {
        this.track(socket);
        socket.setTimeout(l.headersTimeoutMs, () => socket.destroy());
        socket.once("data", (chunk: Buffer) => {
          socket.setTimeout(0);
          socket.pause();
          socket.unshift(chunk);
          const n = Math.min(chunk.length, PREFACE.length);
          const isH2 = n >= 3 && chunk.subarray(0, n).equals(PREFACE.subarray(0, n));
          if (isH2) {
            // the HTTP/2 session takes the socket's buffered bytes itself
            h2.emit("connection", socket);
          } else {
            h1.emit("connection", socket);
            socket.resume();
          }
        });
        socket.on("error", () => socket.destroy());
      };
      // the inner HTTP/1.1 server never listens itself: start its header/request-timeout checks
      h1.emit("listening");
      const outer = this.outerServer(accept, true, { pauseOnConnect: false });
      await listenOn(outer, this.bindAddress, this.ctx.port);
      return;
    }
    if (this.byServerName) return this.listenByServerName(sni, defaultPair);
    const h2 = this.secureServer(sni, defaultPair);
    // (the TLS server reads the paused socket's bytes itself)
    await this.listenWith(h2, false);
  }

  private sniCallback(
    sni: ((servername: string) => tls.SecureContext | null) | undefined,
  ): (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
    return (servername, cb) => {
      const ctx = sni?.(servername) ?? null;
      if (ctx === null) {
        this.core.metrics.tlsErrors.labels("no_certificate").inc();
        cb(new Error(`no certificate for ${servername}`));
        return;
      }
      cb(null, ctx);
    };
  }

  private secureServer(
    sni?: (servername: string) => tls.SecureContext | null,
    defaultPair?: { cert: string; key: string } | null,
  ): http2.Http2SecureServer {
    const l = this.limits;
    const opts: http2.SecureServerOptions = {
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
      // a ClientHello that never completes holds the socket no longer than a request head would
      // (Node's default is 120 s)
      handshakeTimeout: l.headersTimeoutMs,
      maxSessionMemory: 32,
      settings: h2Settings(this.h2Guard, l.maxHeaderSize),
      SNICallback: this.sniCallback(sni),
      ...(defaultPair ? { cert: defaultPair.cert, key: defaultPair.key } : {}),
      ...clientCertificateOptions(this.clientValidation),
    };
    const h2 = http2.createSecureServer(opts, this.onRequest);
    h2.on("session", this.watchSession);
    h2.on("upgrade", this.onUpgrade);
    h2.on("connect", this.onConnect);
    h2.on("checkContinue", this.onCheckContinue);
    h2.on("checkExpectation", this.onCheckExpectation);
    h2.on("clientError", onClientError);
    h2.on("tlsClientError", () => this.core.metrics.tlsErrors.labels("handshake").inc());
    h2.on("secureConnection", (s: tls.TLSSocket) => this.track(s as unknown as net.Socket));
    (h2 as unknown as http.Server).headersTimeout = l.headersTimeoutMs;
    (h2 as unknown as http.Server).requestTimeout = l.requestTimeoutMs;
    (h2 as unknown as http.Server).keepAliveTimeout = l.keepAliveTimeoutMs;
    this.h2 = h2;
    return h2;
  }

  // A socket with TLS listeners: the ClientHello decides where each connection goes.
  private async listenByServerName(
    sni?: (servername: string) => tls.SecureContext | null,
    defaultPair?: { cert: string; key: string } | null,
  ): Promise<void> {
    const l = this.limits;
    if (this.protocol === "HTTPS") this.secureServer(sni, defaultPair);
    const terminator = tls.createServer(
      {
        allowHalfOpen: true,
        handshakeTimeout: l.clientHelloTimeoutMs,
        SNICallback: this.sniCallback(sni),
        ...(defaultPair ? { cert: defaultPair.cert, key: defaultPair.key } : {}),
      },
      socket => this.onTerminated(socket),
    );
    terminator.on("tlsClientError", (_err, socket) => {
      this.core.metrics.tlsErrors.labels("handshake").inc();
      socket.destroy();
    });
    this.terminator = terminator;
    const outer = this.outerServer(socket => this.onTlsConnection(socket), true);
    outer.maxConnections = l.maxStreamConnections;
    outer.on("drop", () => this.core.metrics.tlsErrors.labels("connection_limit").inc());
    await listenOn(outer, this.bindAddress, this.ctx.port);
  }

  // Reads the ClientHello (without answering it) within the limits, then dispatches.
  private onTlsConnection(socket: net.Socket) {
    this.track(socket);
    socket.on("error", () => socket.destroy());
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      this.core.metrics.tlsErrors.labels("client_hello_timeout").inc();
      socket.destroy();
    }, this.limits.clientHelloTimeoutMs);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const data = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const hello = parseClientHello(data);
      if (hello.kind === "incomplete") return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      if (hello.kind === "invalid") {
        this.core.metrics.tlsErrors.labels("client_hello").inc();
        // what is not TLS at all gets no TLS alert
        if (data[0] === 22) socket.end(DECODE_ERROR);
        else socket.destroy();
        return;
      }
      try {
        this.dispatchByServerName(socket, data, hello.serverName);
      } catch (err) {
        reportContained(this.core, "request", err, { listener: this.ctx.socket });
        socket.destroy();
      }
    };
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(timer));
  }

  private dispatchByServerName(socket: net.Socket, hello: Buffer, serverName: string | null) {
    const gen = this.core.current;
    const pl = gen?.listeners.get(this.ctx.socket);
    const entry = pl?.streams?.lookup(serverName) ?? null;
    if (gen === null || entry === null || (entry.mode !== "HTTP" && entry.routeId === null)) {
      this.core.metrics.tcpConnections.labels("none", "no_route").inc();
      // closed without a word, as Envoy does and the conformance suite expects (an
      // unrecognized_name alert would read to it as a server that is there but misconfigured)
      socket.destroy();
      return;
    }
    if (entry.mode === "HTTP" || entry.mode === "Terminate") {
      const server = entry.mode === "HTTP" ? this.h2 : this.terminator;
      if (server === null) return void socket.destroy();
      // the TLS server reads the hello from the socket again
      socket.unshift(hello);
      server.emit("connection", socket);
      return;
    }
    const route = gen.routes.get(entry.routeId!);
    if (route === undefined) return void socket.destroy();
    // a client's FIN is passed on; the backend may still answer
    socket.allowHalfOpen = true;
    splice(this.core, gen, route, socket, hello, this.spliceLimits());
  }

  // A Terminate connection after its handshake: its SNI (the same the hello had) picks the route.
  private onTerminated(socket: tls.TLSSocket) {
    const gen = this.core.current;
    const name = typeof socket.servername === "string" ? socket.servername.toLowerCase() : null;
    const entry = gen?.listeners.get(this.ctx.socket)?.streams?.lookup(name) ?? null;
    const route = entry?.routeId ? gen?.routes.get(entry.routeId) : undefined;
    if (gen == null || entry?.mode !== "Terminate" || route === undefined) {
      this.core.metrics.tcpConnections.labels("none", "no_route").inc();
      socket.destroy();
      return;
    }
    socket.on("error", () => socket.destroy());
    splice(this.core, gen, route, socket, null, this.spliceLimits());
  }

  private spliceLimits() {
    return {
      connectTimeoutMs: this.limits.streamConnectTimeoutMs,
      idleTimeoutMs: this.limits.streamIdleTimeoutMs,
    };
  }

  /** New default certificate for SNI-less clients (rotation). */
  setDefaultCertificate(pair: { cert: string; key: string }) {
    const ca = verifyingCa(this.clientValidation);
    if (this.protocol === "HTTPS" && this.h2)
      (this.h2 as http2.Http2SecureServer).setSecureContext({
        cert: pair.cert,
        key: pair.key,
        ...(ca ? { ca } : {}),
      });
    this.terminator?.setSecureContext({ cert: pair.cert, key: pair.key });
  }

  get address(): net.AddressInfo | null {
    const s = this.outer ?? (this.protocol === "HTTPS" ? this.h2 : this.h1);
    const a = s?.address();
    return a && typeof a === "object" ? a : null;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes everything. */
  async close(graceMs = 10_000): Promise<void> {
    const servers = [this.outer, this.h1, this.h2, this.terminator].filter(
      (s): s is NonNullable<typeof s> => s !== null,
    );
    const listening = this.outer ?? (this.protocol === "HTTPS" ? this.h2 : this.h1);
    await new Promise<void>(resolve => {
      if (listening === null || !listening.listening) return resolve();
      listening.close(() => resolve());
      // close() resolves only when every connection has ended: nudge idle ones
      this.h1?.closeIdleConnections();
      for (const s of this.sessions) s.close();
      const deadline = Date.now() + graceMs;
      const tick = setInterval(() => {
        this.h1?.closeIdleConnections();
        if (this.protocol === "HTTPS")
          (this.h2 as unknown as http.Server | null)?.closeIdleConnections?.();
        if (Date.now() >= deadline) {
          for (const s of this.sockets) s.destroy();
          for (const s of this.sessions) s.destroy();
        }
        if (this.sockets.size === 0) {
          clearInterval(tick);
          resolve();
        }
      }, 50);
      tick.unref();
    });
    for (const s of servers) if (s !== listening) (s as net.Server).close(() => {});
  }
}

function listenOn(server: net.Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(
      {
        host: address === "0.0.0.0" || address === "::" || address === "" ? undefined : address,
        port,
        exclusive: false,
      },
      () => {
        server.off("error", onError);
        resolve();
      },
    );
  });
}
