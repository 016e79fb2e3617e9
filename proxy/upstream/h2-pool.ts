// HTTP/2 to one endpoint of a gRPC or h2c cluster (h2c with prior knowledge, or h2 over TLS):
// one multiplexed session, opened on first use and replaced after GOAWAY or an error, driven
// through undici's dispatch-handler interface so the proxy's exchange code serves it like any
// pool. Written on node:http2 rather than undici's H2 client because HTTP/2 (gRPC above all)
// needs what that client does not do: trailers delivered after the whole body (undici drops
// body chunks still buffered in a paused stream when the trailers arrive), `te: trailers` sent,
// and for gRPC no body timeout cutting a quiet stream at 60 s.
import http2 from "node:http2";
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { Readable } from "node:stream";
import type tls from "node:tls";
import type { Dispatcher } from "undici";

export interface H2PoolOptions {
  connectTimeoutMs: number;
  /** a stream with no bytes either way for this long is cancelled (0: never) */
  streamIdleTimeoutMs: number;
  /** a session with no streams for this long is closed */
  sessionIdleTimeoutMs: number;
  /** TLS to the endpoint; absent: h2c */
  tls?: tls.ConnectionOptions;
}

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } =
  http2.constants;

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

// request headers a client must not send on HTTP/2 (RFC 9113 §8.2.2), and Host (:authority)
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
]);

export class H2Pool {
  private session: ClientHttp2Session | null = null;
  private sessionError: Error | null = null;
  private closed = false;
  private active = 0;
  private readonly origin: string;
  private readonly options: H2PoolOptions;
  private readonly sessions = new Set<ClientHttp2Session>();

  constructor(origin: string, options: H2PoolOptions) {
    this.origin = origin;
    this.options = options;
  }

  dispatch(
    opts: Dispatcher.DispatchOptions & { servername?: string | undefined },
    handler: Dispatcher.DispatchHandler,
  ): boolean {
    if (this.closed) {
      handler.onError?.(coded("the pool is closed", "UND_ERR_CLOSED"));
      return false;
    }
    new H2Exchange(this, opts, handler).start();
    return true;
  }

  /** The current session, opened when there is none usable. */
  acquire(): ClientHttp2Session {
    const current = this.session;
    if (current !== null && !current.closed && !current.destroyed) return current;
    const tlsOptions = this.options.tls;
    const session = http2.connect(this.origin, {
      ...(tlsOptions ? { ...tlsOptions, ALPNProtocols: ["h2"] } : {}),
      settings: { enablePush: false },
    });
    this.session = session;
    this.sessions.add(session);
    this.sessionError = null;
    const timer =
      this.options.connectTimeoutMs > 0
        ? setTimeout(
            () =>
              session.destroy(
                coded(
                  `connect timeout after ${this.options.connectTimeoutMs} ms`,
                  "UND_ERR_CONNECT_TIMEOUT",
                ),
              ),
            this.options.connectTimeoutMs,
          )
        : null;
    timer?.unref();
    session.once("connect", () => {
      if (timer) clearTimeout(timer);
    });
    session.on("error", err => {
      // streams hear of it as their own error or a cancel; this is what they report
      this.sessionError = err;
    });
    const retire = () => {
      if (this.session === session) this.session = null;
    };
    session.once("goaway", retire);
    session.once("close", () => {
      if (timer) clearTimeout(timer);
      retire();
      this.sessions.delete(session);
    });
    if (this.options.sessionIdleTimeoutMs > 0)
      session.setTimeout(this.options.sessionIdleTimeoutMs, () => {
        if (this.activeOn(session) === 0) session.close();
      });
    session.unref();
    return session;
  }

  private readonly perSession = new WeakMap<ClientHttp2Session, number>();

  activeOn(session: ClientHttp2Session): number {
    return this.perSession.get(session) ?? 0;
  }

  opened(session: ClientHttp2Session): void {
    this.active++;
    this.perSession.set(session, this.activeOn(session) + 1);
    session.ref();
  }

  ended(session: ClientHttp2Session): void {
    this.active--;
    const n = this.activeOn(session) - 1;
    this.perSession.set(session, n);
    if (n === 0) session.unref();
  }

  /** What made the session fail, for a stream that only saw a cancel. */
  failureOf(session: ClientHttp2Session): Error | null {
    return this.session === session || this.sessions.has(session) ? this.sessionError : null;
  }

  get streamIdleTimeoutMs(): number {
    return this.options.streamIdleTimeoutMs;
  }

  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  /** No new streams; open ones finish. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.all(
      [...this.sessions].map(s => new Promise<void>(r => s.close(() => r()))),
    ).then(() => {});
  }

  /** Every stream fails now. */
  destroy(): Promise<void> {
    this.closed = true;
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    return Promise.resolve();
  }
}

// One request on the session: headers out, the body piped with backpressure, the response
// handed to the handler as undici would (onHeaders → onData… → onComplete(trailers)).
class H2Exchange {
  private readonly pool: H2Pool;
  private readonly opts: Dispatcher.DispatchOptions;
  private readonly handler: Dispatcher.DispatchHandler;
  private stream: ClientHttp2Stream | null = null;
  private session: ClientHttp2Session | null = null;
  private done = false;
  private trailers: string[] | null = null;
  /** a response whose HEADERS frame ended the stream (gRPC's trailers-only form) */
  private headersOnly: (http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) | null = null;

  constructor(pool: H2Pool, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.pool = pool;
    this.opts = opts;
    this.handler = handler;
  }

  start(): void {
    this.handler.onConnect?.(this.abort);
    if (this.done) return;
    let session: ClientHttp2Session;
    try {
      session = this.pool.acquire();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.session = session;
    const body = this.opts.body;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(this.requestHeaders(), {
        endStream: body === null || body === undefined,
      });
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.stream = stream;
    this.pool.opened(session);
    const idle = this.pool.streamIdleTimeoutMs;
    if (idle > 0)
      stream.setTimeout(idle, () =>
        this.cancel(coded(`no frames on the stream for ${idle} ms`, "UND_ERR_BODY_TIMEOUT")),
      );
    stream.on("response", (headers, flags) => {
      // handed over with the end, in one go: the handler can then tell a trailers-only answer
      // from headers followed by an empty body, which a gRPC client reads differently
      if (flags & NGHTTP2_FLAG_END_STREAM) this.headersOnly = headers;
      else this.onResponse(headers);
    });
    stream.on("data", (chunk: Buffer) => {
      if (this.done) return;
      if (this.handler.onData?.(chunk) === false) stream.pause();
    });
    stream.on("trailers", trailers => {
      this.trailers = flatten(trailers);
    });
    stream.once("end", () => {
      if (this.headersOnly !== null) this.onResponse(this.headersOnly);
      if (this.done) return;
      this.done = true;
      this.handler.onComplete?.(this.trailers);
    });
    stream.once("error", (err: Error & { code?: string }) => {
      const sessionFailure = this.session ? this.pool.failureOf(this.session) : null;
      this.fail(err.code === "ERR_HTTP2_STREAM_CANCEL" && sessionFailure ? sessionFailure : err);
    });
    stream.once("close", () => {
      this.pool.ended(session);
      if (this.done) return;
      const code = stream.rstCode ?? NGHTTP2_NO_ERROR;
      const failure = this.pool.failureOf(session);
      this.fail(
        failure ??
          (code === NGHTTP2_REFUSED_STREAM
            ? coded("the backend refused the stream", "UND_ERR_SOCKET")
            : coded(`the backend reset the stream (HTTP/2 error ${code})`, "ECONNRESET")),
      );
    });
    this.sendBody(stream, body);
  }

  private requestHeaders(): OutgoingHttpHeaders {
    const raw = this.opts.headers;
    const out: OutgoingHttpHeaders = {
      ":method": this.opts.method,
      ":path": this.opts.path,
      ":scheme": this.pool.secure ? "https" : "http",
    };
    let authority: string | undefined;
    const pairs: string[] = Array.isArray(raw) ? (raw as string[]) : [];
    for (let i = 0; i < pairs.length; i += 2) {
      const name = pairs[i]!.toLowerCase();
      const value = pairs[i + 1]!;
      if (name === "host") authority = value;
      if (NOT_FORWARDED.has(name) || name.charCodeAt(0) === 58 /* : */) continue;
      const prev = out[name];
      out[name] =
        prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    if (authority !== undefined) out[":authority"] = authority;
    // gRPC over HTTP/2 requires it: it tells the server a proxy on the way passes trailers
    out.te = "trailers";
    return out;
  }

  private sendBody(stream: ClientHttp2Stream, body: Dispatcher.DispatchOptions["body"]): void {
    if (body === null || body === undefined) return;
    if (typeof body === "string" || body instanceof Uint8Array) {
      stream.end(body);
      return;
    }
    if (body instanceof Readable) {
      body.once("error", err => this.cancel(err));
      // the request side ends or fails independently of the response: a server may answer
      // before the client's stream ends (bidirectional streaming)
      body.pipe(stream);
      return;
    }
    this.cancel(coded("unsupported request body type", "UND_ERR_INVALID_ARG"));
  }

  private onResponse(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    if (this.done) return;
    const status = Number(headers[":status"]);
    const raw: Buffer[] = [];
    for (const [name, value] of Object.entries(headers)) {
      if (name.charCodeAt(0) === 58 || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value])
        raw.push(Buffer.from(name, "latin1"), Buffer.from(String(v), "latin1"));
    }
    const stream = this.stream!;
    const go = this.handler.onHeaders?.(status, raw, () => stream.resume(), "");
    if (go === false) stream.pause();
  }

  private readonly abort = (err?: Error): void => {
    this.cancel(err ?? coded("request aborted", "UND_ERR_ABORTED"));
  };

  private cancel(err: Error): void {
    if (this.done) return;
    const stream = this.stream;
    if (stream !== null && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    this.fail(err);
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    const stream = this.stream;
    if (stream !== null && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    this.handler.onError?.(err);
  }
}

function flatten(headers: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, String(v));
  }
  return out;
}
