// Downstream sockets. One ListenerServer per (protocol, address, port) of the config:
//   HTTP  — a net.Server that looks at the first bytes of each connection: the HTTP/2 preface
//           goes to an h2c (prior knowledge) server, everything else to the HTTP/1.1 server.
//   HTTPS — an http2 secure server with ALPN h2 + http/1.1 and SNICallback choosing the
//           certificate from the current generation (rotation needs no restart).
// Servers outlive generations: they route with whatever generation is current when a request
// arrives. Parser limits (header size/count, header and request timeouts) and clear 400/408/431
// answers to malformed requests are set here; llhttp (strict mode) rejects Content-Length +
// Transfer-Encoding conflicts and malformed chunking before any routing.
import net from "node:net";
import http from "node:http";
import http2 from "node:http2";
import type tls from "node:tls";
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
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxHeaderSize: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 30_000,
  connectionsCheckingIntervalMs: 1_000,
  idleTimeoutMs: 120_000,
  h2c: true,
};

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function clientErrorResponse(err: Error & { code?: string; reason?: string }): string {
  let status = 400;
  const why = err.reason ?? err.message;
  let detail = `malformed request (${err.code ?? "error"}: ${why})`;
  if (err.code === "HPE_HEADER_OVERFLOW") {
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
  const reason =
    status === 431
      ? "Request Header Fields Too Large"
      : status === 408
        ? "Request Timeout"
        : "Bad Request";
  const body = errorBody(status, detail);
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function onClientError(err: Error & { code?: string; reason?: string }, socket: Duplex) {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(clientErrorResponse(err));
}

export class ListenerServer {
  readonly key: string;
  readonly ctx: ListenerContext;
  readonly protocol: "HTTP" | "HTTPS";
  private readonly core: ProxyCore;
  private readonly limits: ServerLimits;
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
    this.key = ListenerServer.keyOf(listener);
    this.ctx = {
      socket: `${listener.address}:${listener.port}`,
      scheme: listener.protocol === "HTTPS" ? "https" : "http",
      port: listener.port,
    };
  }

  static keyOf(l: Listener): string {
    return `${l.protocol}|${l.address}:${l.port}`;
  }

  // The two entry points of request handling: whatever throws below them ends that request or
  // connection (server/contain.ts), never the worker.
  private onRequest = (req: DownstreamRequest, res: DownstreamResponse) => {
    // HTTP/2: next turn, so a stream the client resets in the same read costs nothing (h2-guard.ts)
    if (isHttp2(req)) setImmediate(this.onH2Request, req, res);
    else this.handle(req, res);
  };
  private onH2Request = (req: DownstreamRequest, res: DownstreamResponse) => {
    const stream = (req as http2.Http2ServerRequest).stream;
    if (stream.destroyed || isRefused(stream.session)) return;
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
    try {
      handleUpgrade(this.core, this.ctx, req, socket, head);
    } catch (err) {
      reportContained(this.core, "upgrade", err, requestContext(this.ctx, req));
      endSocketWithInternalError(socket);
    }
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
      requireHostHeader: true,
      noDelay: true,
      // parse up to one more than the limit so the handler can answer 431 instead of truncating
      maxHeadersCount: this.core.options.maxHeaderCount + 1,
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
      h1.maxHeadersCount = this.core.options.maxHeaderCount + 1;
      h1.on("clientError", onClientError);
      h1.on("upgrade", this.onUpgrade);
      this.h1 = h1;
      if (!l.h2c) {
        h1.on("connection", (s: net.Socket) => this.track(s));
        await listenOn(h1, this.bindAddress, this.ctx.port);
        return;
      }
      const h2 = http2.createServer(
        { settings: h2Settings(this.h2Guard, l.maxHeaderSize), maxSessionMemory: 32 },
        this.onRequest,
      );
      h2.on("session", this.watchSession);
      this.h2 = h2;
      const outer = net.createServer({ noDelay: true, pauseOnConnect: false }, socket => {
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
      });
      this.outer = outer;
      // the inner HTTP/1.1 server never listens itself: start its header/request-timeout checks
      h1.emit("listening");
      await listenOn(outer, this.bindAddress, this.ctx.port);
      return;
    }
    const opts: http2.SecureServerOptions = {
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
      maxSessionMemory: 32,
      settings: h2Settings(this.h2Guard, l.maxHeaderSize),
      SNICallback: (servername, cb) => {
        const ctx = sni?.(servername) ?? null;
        if (ctx === null) {
          this.core.metrics.tlsErrors.labels("no_certificate").inc();
          cb(new Error(`no certificate for ${servername}`));
          return;
        }
        cb(null, ctx);
      },
      ...(defaultPair ? { cert: defaultPair.cert, key: defaultPair.key } : {}),
    };
    const h2 = http2.createSecureServer(opts, this.onRequest);
    h2.on("session", this.watchSession);
    h2.on("upgrade", this.onUpgrade);
    h2.on("clientError", onClientError);
    h2.on("tlsClientError", () => this.core.metrics.tlsErrors.labels("handshake").inc());
    h2.on("secureConnection", (s: tls.TLSSocket) => this.track(s as unknown as net.Socket));
    (h2 as unknown as http.Server).headersTimeout = l.headersTimeoutMs;
    (h2 as unknown as http.Server).requestTimeout = l.requestTimeoutMs;
    (h2 as unknown as http.Server).keepAliveTimeout = l.keepAliveTimeoutMs;
    this.h2 = h2;
    await listenOn(h2, this.bindAddress, this.ctx.port);
  }

  /** New default certificate for SNI-less clients (rotation). */
  setDefaultCertificate(pair: { cert: string; key: string }) {
    if (this.protocol === "HTTPS" && this.h2)
      (this.h2 as http2.Http2SecureServer).setSecureContext({ cert: pair.cert, key: pair.key });
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
    const servers = [this.outer, this.h1, this.h2].filter(
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
