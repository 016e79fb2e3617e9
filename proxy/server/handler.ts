// The request path: route → filters → balancer → undici dispatch() with a handler that writes the
// upstream response straight into the downstream response (raw header arrays, no intermediate
// streams). Everything it reads was prepared when the config was loaded (see Generation); a
// request keeps the Generation it started on until it ends.
import { isIP } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Http2ServerRequest } from "node:http2";
import type { Http2ServerResponse } from "node:http2";
import { PassThrough } from "node:stream";
import { hasRequestBody } from "../pipeline/request-body.ts";
import type { Duplex, Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { hostOf } from "../router/router.ts";
import { normalizePath } from "../router/normalize-path.ts";
import type { MatchedEntry, RequestView } from "../router/router.ts";
import { HOP_BY_HOP, appendPlan, connectionTokens, lowerIfNeeded } from "../filters/headers.ts";
import type { HeaderPlan } from "../filters/headers.ts";
import type {
  Generation,
  PreparedBackend,
  PreparedListener,
  PreparedRoute,
} from "../runtime/generation.ts";
import type { ClusterRuntime, UpstreamEndpoint } from "../upstream/cluster.ts";
import type { AttemptOutcome } from "../upstream/circuit-breaker.ts";
import { hashKeyFor } from "../upstream/hash-key.ts";
import type { UpstreamDispatchOptions } from "../upstream/pools.ts";
import type { Metrics, RouteMetrics } from "../observability/metrics.ts";
import type { Logger } from "../observability/logger.ts";
import { endSocketWithInternalError, endWithInternalError, reportContained } from "./contain.ts";
import { RequestContext, applyResponseEdits } from "../pipeline/context.ts";
import type { LocalReply } from "../pipeline/context.ts";
import { runSteps } from "../pipeline/chain.ts";
import { bodyView } from "../pipeline/step.ts";
import type { BodyView, ResponseStep } from "../pipeline/step.ts";
import { rewritePath } from "../pipeline/rewrite.ts";
import {
  GrpcStatus,
  grpcReplyHeaders,
  grpcStatusFor,
  grpcTimeoutMs,
  isGrpcRequest,
  sendGrpcReply,
} from "./grpc.ts";
import type { Pairs } from "../plugins/abi.ts";
import type { RequestSpan } from "../observability/tracing.ts";
import { proxiedPeer } from "./proxy-protocol.ts";

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

export interface HandlerOptions {
  /** Also send the RFC 7239 Forwarded header. */
  forwardedHeader: boolean;
  /** Reject requests with more headers than this (431). */
  maxHeaderCount: number;
  /** Reject bodies declared larger than this (413); 0 = unlimited. */
  maxRequestBodyBytes: number;
  /** Idle timeout of upgraded (WebSocket) tunnels. */
  tunnelIdleTimeoutMs: number;
  accessLog: boolean;
  /** Share of active requests that may be retries (retry budget), and the floor. */
  retryBudgetRatio: number;
  retryBudgetMin: number;
}

export interface ProxyCore {
  current: Generation | null;
  metrics: Metrics;
  noRouteMetrics: RouteMetrics;
  logger: Logger;
  options: HandlerOptions;
  tunnels: Set<Tunnel>;
}

export interface ListenerContext {
  /** "<address>:<port>" — the key of the prepared listener in every generation */
  socket: string;
  scheme: "http" | "https";
  port: number;
}

export interface Tunnel {
  routeId: string;
  generation: Generation;
  close(): void;
}

const TEXT = "text/plain; charset=utf-8";
const NO_RESPONSE_STEPS: ResponseStep[] = [];
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  307: "Temporary Redirect",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

// A response that cannot finish as it began: HTTP/1.1 closes the connection; HTTP/2 resets just
// this stream with INTERNAL_ERROR, which a client cannot take for a complete answer (a plain
// destroy sends RST_STREAM with NO_ERROR, or CANCEL).
const CUT = Object.assign(new Error("response cut: the upstream failed mid-response"), {
  code: "RAUTA_RESPONSE_CUT",
});

function cutResponse(res: DownstreamResponse): void {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse["stream"] | undefined;
  if (stream !== undefined && !stream.destroyed) {
    // destroy with an error resets with INTERNAL_ERROR; close(code) on a stream the client has
    // ended sends NO_ERROR whatever the code (Node 26)
    stream.once("error", () => {});
    stream.destroy(CUT);
  } else res.destroy();
}

export function errorBody(status: number, detail: string): string {
  return `${status} ${REASONS[status] ?? ""}: ${detail}\n`;
}

function sendLocal(
  res: DownstreamResponse,
  status: number,
  detail: string,
  extra?: Record<string, string>,
) {
  if (res.headersSent) {
    cutResponse(res);
    return;
  }
  if (status >= 400 && isGrpcRequest(res.req.headers)) {
    sendGrpcReply(res, grpcReplyHeaders(status, detail, Object.entries(extra ?? {})));
    return;
  }
  const body = errorBody(status, detail);
  const headers: Record<string, string | number> = {
    "content-type": TEXT,
    "content-length": Buffer.byteLength(body),
    ...extra,
  };
  (res as ServerResponse).writeHead(status, headers);
  res.end(body);
}

/** What a log line about a failed request says about it (never the body). */
export function requestContext(lctx: ListenerContext, req: DownstreamRequest) {
  return {
    listener: lctx.socket,
    method: req.method,
    path: req.url,
    httpVersion: req.httpVersion,
    client: clientAddress(req),
  };
}

// The client of a request: its connection's peer, or the X-Forwarded-For entry the listener's
// trusted hops point at (trustForwardedFor), for rate limits, hashing and logs.
const forwardedClients = new WeakMap<DownstreamRequest, string>();

function clientAddress(req: DownstreamRequest): string {
  return forwardedClients.get(req) ?? peerAddress(req);
}

function peerAddress(req: DownstreamRequest): string {
  // a listener speaking the PROXY protocol: the client its load balancer accepted
  const proxied = proxiedPeer(req.socket);
  if (proxied !== undefined) return proxied;
  let a = req.socket?.remoteAddress ?? "";
  if (a.startsWith("::ffff:")) a = a.slice(7);
  return a;
}

/** Takes the client from X-Forwarded-For when the listener trusts `hops` proxies in front. */
function trustForwardedFor(req: DownstreamRequest, hops: number | undefined): void {
  if (hops === undefined || hops <= 0) return;
  const client = forwardedClient(req.headers["x-forwarded-for"], hops);
  if (client !== null) forwardedClients.set(req, client);
}

/**
 * The address `hops` trusted proxies vouch for: each appends the address it saw, so the
 * outermost one's entry is the hops-th from the right (as Envoy's xff_num_trusted_hops). null
 * when the header has fewer entries (someone bypassed a proxy) or the entry is not an address.
 */
export function forwardedClient(
  header: string | string[] | undefined,
  hops: number,
): string | null {
  if (header === undefined) return null;
  const entries = (typeof header === "string" ? header : header.join(",")).split(",");
  if (entries.length < hops) return null;
  const candidate = entries[entries.length - hops]!.trim();
  return isIP(candidate) !== 0 ? candidate : null;
}

// The span of each traced request: started once it is routed, ended with its response (or at
// once, for a request no route takes).
const requestSpans = new WeakMap<DownstreamRequest, RequestSpan>();

function startSpan(
  pl: PreparedListener | undefined,
  lctx: ListenerContext,
  req: DownstreamRequest,
  routeId: string | null,
  view: RequestView | null,
): RequestSpan | null {
  const tracer = pl?.tracer ?? null;
  if (tracer === null) return null;
  let path = view?.path;
  let query = view?.query ?? "";
  if (path === undefined) {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    path = q === -1 ? url : url.slice(0, q);
    query = q === -1 ? "" : url.slice(q + 1);
  }
  const span = tracer.start(req.headers, {
    method: req.method ?? "GET",
    path,
    query,
    scheme: lctx.scheme,
    host: hostOf(
      (isHttp2(req) ? (req.headers[":authority"] as string | undefined) : undefined) ??
        req.headers.host ??
        "",
    ),
    port: lctx.port,
    client: clientAddress(req),
    protocol: isHttp2(req) ? "2" : `${req.httpVersionMajor}.${req.httpVersionMinor}`,
    userAgent: req.headers["user-agent"],
    routeId,
  });
  requestSpans.set(req, span);
  return span;
}

/** The end of a request the gateway answered or proxied: its access log line and its span. */
function requestEnded(
  core: ProxyCore,
  req: DownstreamRequest,
  status: number,
  routeId: string,
  start: number,
  detail?: string,
) {
  const span = requestSpans.get(req);
  if (span !== undefined) span.end(status, routeId, detail);
  if (core.options.accessLog) accessLog(core, req, status, routeId, start, span);
}

// The backend's trace context: the gateway's span is its parent (the client's traceparent, if
// any, is this span's parent instead).
function setTraceContext(headers: string[], span: RequestSpan) {
  for (let i = 0; i < headers.length; i += 2) {
    const l = lowerIfNeeded(headers[i]!);
    if (l === "traceparent" || l === "tracestate") {
      headers.splice(i, 2);
      i -= 2;
    }
  }
  headers.push("traceparent", span.traceparent);
  if (span.tracestate !== undefined) headers.push("tracestate", span.tracestate);
}

function headerString(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === "string" ? v : v.join(", ");
}

interface Routed {
  failed: false;
  gen: Generation;
  pl: PreparedListener;
  entry: MatchedEntry<PreparedRoute>;
  view: RequestView;
  authority: string;
}

interface RouteFailure {
  failed: true;
  status: number;
  detail: string;
  headers?: Record<string, string>;
}

const fail = (status: number, detail: string, headers?: Record<string, string>): RouteFailure =>
  headers === undefined
    ? { failed: true, status, detail }
    : { failed: true, status, detail, headers };

/**
 * Whether this request arrived on an HTTP/2 stream. Decided by the object Node handed us, never
 * by the client's request line: "GET / HTTP/2.0" on an HTTP/1.1 connection has
 * httpVersionMajor 2 but no stream.
 */
export function isHttp2(req: DownstreamRequest): req is Http2ServerRequest {
  return req instanceof Http2ServerRequest;
}

// RFC 9112 §3.2.2: "http://authority/path?query" (the scheme is case-insensitive)
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;
// RFC 9110 §7.2 Host = uri-host [ ":" port ] (RFC 3986 §3.2.2: IP-literal, IPv4, reg-name of
// unreserved / pct-encoded / sub-delims): no userinfo, path, spaces or a second value. Empty is
// valid (a target without authority).
const AUTHORITY =
  /^(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/;

function validAuthority(a: string): boolean {
  return AUTHORITY.test(a);
}

const CLOSE = { connection: "close" };
const PRINTABLE = /^[\x21-\x7e]*$/;

// HTTP/1.x framing and Host rules llhttp leaves to us (it refuses CL+TE, duplicate CL, TE not
// ending in chunked). null: fine.
function http1Framing(req: DownstreamRequest): RouteFailure | null {
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one Host field line
  // (Node keeps the first), is answered 400
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host" && ++hosts > 1)
      return fail(400, "more than one Host header");
  if (hosts === 0 && req.httpVersionMinor > 0)
    return fail(400, "an HTTP/1.1 request needs a Host header");
  const te = req.headers["transfer-encoding"];
  if (te === undefined) return null;
  // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty; close afterwards
  if (req.httpVersionMinor === 0)
    return fail(400, "Transfer-Encoding in an HTTP/1.0 request", CLOSE);
  // empty list elements are allowed (RFC 9110 §5.6.1)
  const codings = te
    .split(",")
    .map(c => c.trim().toLowerCase())
    .filter(c => c !== "");
  // RFC 9112 §6.3: chunked not last: the body length cannot be known, 400 and close (llhttp
  // would only refuse it once it reads the body)
  if (codings[codings.length - 1] !== "chunked")
    return fail(400, `Transfer-Encoding does not end with chunked (${JSON.stringify(te)})`, CLOSE);
  // RFC 9112 §6.1: a transfer coding we do not implement ("gzip, chunked") is answered 501: it
  // would reach the backend undecoded and unlabelled (Transfer-Encoding is hop-by-hop)
  if (codings.length > 1)
    return fail(501, `transfer coding not implemented (${JSON.stringify(te)})`, CLOSE);
  return null;
}

// Shared by requests and upgrades: generation, listener, host index, route (no closures: this
// runs for every request).
function route(
  core: ProxyCore,
  lctx: ListenerContext,
  req: DownstreamRequest,
): Routed | RouteFailure {
  const gen = core.current;
  if (gen === null) {
    return fail(503, "no configuration loaded yet");
  }
  const pl = gen.listeners.get(lctx.socket);
  if (pl === undefined) {
    return fail(503, "this listener is being removed");
  }
  const isH2 = isHttp2(req);
  // RFC 9112 §2.3: an HTTP/1.1 server answers a request line of another major version with 505
  // (llhttp accepts "HTTP/2.0" and others on an HTTP/1.1 connection), and closes: where a
  // message of that version ends (HTTP/0.9 has no fields at all) is llhttp's guess, not ours
  if (!isH2 && req.httpVersionMajor !== 1)
    return fail(
      505,
      `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} is not supported on an HTTP/1.1 connection`,
      CLOSE,
    );
  let authority =
    (isH2 ? (req.headers[":authority"] as string | undefined) : undefined) ??
    req.headers.host ??
    "";
  if (!isH2) {
    const bad = http1Framing(req);
    if (bad !== null) return bad;
  }
  let url = req.url ?? "/";
  const m = req.method;
  // RFC 9112 §3.2.4: "OPTIONS *" is about the server itself
  const asterisk = url === "*" && m === "OPTIONS";
  if (url.charCodeAt(0) !== 47 /* / */ && !asterisk) {
    // RFC 9112 §3.2.2 absolute-form (a client talking to us as to a proxy; HTTP/1 only, RFC 9113
    // §8.3.1): the target's authority is the one we route by and forward, the Host header is
    // ignored.
    const abs = isH2 ? null : ABSOLUTE_FORM.exec(url);
    if (abs === null) return fail(400, "request target must be an absolute path");
    const target = abs[1]!;
    // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid; §4.2.4: userinfo is an error
    if (!validAuthority(target) || hostOf(target) === "")
      return fail(400, "absolute-form target needs a host (and no userinfo)");
    authority = target;
    url = abs[2] === "" ? "/" : abs[2]!.charCodeAt(0) === 63 /* ? */ ? `/${abs[2]!}` : abs[2]!;
  }
  if (!validAuthority(authority))
    return fail(400, `invalid ${isH2 ? ":authority" : "Host"} ${JSON.stringify(authority)}`);
  // RFC 9112 §3.2: a request-target has no fragment; a backend that cuts at "#" would see
  // another path than the one we matched ("/secret#x" → "/secret")
  if (url.includes("#")) return fail(400, "request target must not contain a fragment (#)");
  // RFC 3986 §2 (RFC 9113 §8.3.1): a target is printable ASCII; nghttp2 lets other octets through
  // in :path, llhttp does not, and an HTTP/1.1 backend would refuse the request line we send
  if (isH2 && !PRINTABLE.test(url)) return fail(400, "request target must be printable ASCII");
  // RFC 9110 §7.6.2: OPTIONS or TRACE with Max-Forwards 0 is not forwarded: we are its final
  // recipient (TRACE is not implemented here)
  if (asterisk || ((m === "OPTIONS" || m === "TRACE") && req.headers["max-forwards"] === "0"))
    return m === "TRACE"
      ? fail(501, "TRACE is not implemented by the gateway")
      : fail(200, "OPTIONS answered by the gateway");
  const q = url.indexOf("?");
  const query = q === -1 ? "" : url.slice(q + 1);
  const normal = normalizePath(q === -1 ? url : url.slice(0, q), pl.paths);
  if (normal.kind === "reject") return fail(400, normal.detail);
  if (normal.kind === "redirect") {
    const location = query === "" ? normal.path : `${normal.path}?${query}`;
    return fail(307, "escaped slashes in the path were unescaped", { location });
  }
  const view: RequestView = {
    method: req.method ?? "GET",
    path: normal.path,
    query,
    headers: req.headers,
  };
  const host = hostOf(authority);
  // RFC 9110 §15.5.20: a TLS connection belongs to the listener its SNI chose (and its
  // certificate). A request for a host another listener of this port serves came over a reused
  // connection (HTTP/2 coalescing, or a client that sends one name in SNI and another in Host):
  // 421 makes the client open a connection of its own for that host.
  if (pl.sni !== null) {
    const sni = tlsServerName(req);
    if (sni !== null && pl.sni.listenerOf(sni) !== pl.sni.listenerOf(host))
      return fail(421, `this connection's TLS server name ${sni} is not for host ${host}`);
  }
  const vh = pl.router.virtualHost(host);
  const entry = vh === null ? null : vh.match(view);
  if (entry === null) {
    return fail(404, `no route matches this request (host ${JSON.stringify(host)})`);
  }
  return { failed: false, gen, pl, entry, view, authority };
}

/** The SNI server name the client sent on this request's TLS connection; null without one. */
function tlsServerName(req: DownstreamRequest): string | null {
  // HTTP/2's compat request exposes the session's socket
  const name = (req.socket as { servername?: string | false | null } | null)?.servername;
  return typeof name === "string" && name !== "" ? name : null;
}

export function handleRequest(
  core: ProxyCore,
  lctx: ListenerContext,
  req: DownstreamRequest,
  res: DownstreamResponse,
) {
  const start = performance.now();
  const routed = route(core, lctx, req);
  if (routed.failed) {
    sendLocal(res, routed.status, routed.detail, routed.headers);
    core.noRouteMetrics.record(routed.status, (performance.now() - start) / 1000);
    startSpan(core.current?.listeners.get(lctx.socket), lctx, req, null, null)?.end(
      routed.status,
      null,
      routed.detail,
    );
    return;
  }
  const r = routed.entry.route;
  const client = routed.pl.listener.client;
  trustForwardedFor(req, client?.trustedHops);
  if (routed.pl.tracer !== null) startSpan(routed.pl, lctx, req, r.id, routed.view);
  const maxHeaders = client?.maxHeaderCount ?? core.options.maxHeaderCount;
  if (req.rawHeaders.length >> 1 > maxHeaders) {
    localReply(core, req, res, r, start, {
      status: 431,
      detail: `more than ${maxHeaders} request headers`,
    });
    return;
  }
  if (!r.hasChain && routed.pl.chain.request.length === 0) {
    let extra: string[] | null = null;
    if (r.limit !== null) {
      const verdict = r.limit.admit(req, clientAddress(req), r.id);
      if (!Array.isArray(verdict)) return localReply(core, req, res, r, start, verdict);
      extra = verdict;
    }
    proceed(core, lctx, routed, req, res, start, null, extra);
    return;
  }
  const ctx = contextOf(routed, req, lctx);
  runSteps(ctx, [r.early.request, routed.pl.chain.request, r.late.request], (reply, err) => {
    if (err !== undefined) return chainFailed(core, req, res, r, err, lctx);
    if (res.destroyed || res.writableEnded) return; // the client left while a plugin ran
    if (reply !== null) return localReply(core, req, res, r, start, reply, ctx);
    proceed(core, lctx, routed, req, res, start, ctx);
  });
}

function contextOf(routed: Routed, req: DownstreamRequest, lctx: ListenerContext): RequestContext {
  return new RequestContext(
    routed.gen,
    routed.pl,
    routed.entry,
    routed.view,
    req,
    lctx,
    clientAddress(req),
    routed.authority,
  );
}

function chainFailed(
  core: ProxyCore,
  req: DownstreamRequest,
  res: DownstreamResponse,
  r: PreparedRoute,
  err: unknown,
  lctx: ListenerContext,
) {
  reportContained(core, "request", err, { ...requestContext(lctx, req), route: r.id });
  endWithInternalError(res as ServerResponse);
  r.metrics.record(500, 0);
  requestSpans.get(req)?.end(500, r.id, "internal error");
}

// After the chain: pick the backend, run its plugins, check the body size, go upstream.
function proceed(
  core: ProxyCore,
  lctx: ListenerContext,
  routed: Routed,
  req: DownstreamRequest,
  res: DownstreamResponse,
  start: number,
  ctx: RequestContext | null,
  /** response headers of the request path without a context (the rate limit's) */
  extra: string[] | null = null,
) {
  const r = routed.entry.route;
  const backend = pickBackend(r);
  if (backend === null) {
    localReply(
      core,
      req,
      res,
      r,
      start,
      {
        status: 500,
        detail: "the route has no valid backend (backendRef invalid or all weights 0)",
      },
      ctx,
    );
    return;
  }
  const cluster = backend.cluster;
  if (cluster === null) {
    localReply(
      core,
      req,
      res,
      r,
      start,
      {
        status: 500,
        detail: `backend ${backend.clusterId ?? "(invalid backendRef)"} is not available`,
      },
      ctx,
    );
    return;
  }
  const declared = req.headers["content-length"];
  const max = routed.pl.listener.client?.maxRequestBodyBytes ?? core.options.maxRequestBodyBytes;
  if (max > 0 && declared !== undefined && Number(declared) > max) {
    localReply(
      core,
      req,
      res,
      r,
      start,
      { status: 413, detail: `request body larger than ${max} bytes` },
      ctx,
    );
    return;
  }
  const go = (c: RequestContext | null) =>
    new Exchange(
      core,
      lctx,
      routed.gen,
      req,
      res,
      r,
      routed.entry,
      routed.view,
      backend,
      cluster,
      routed.authority,
      start,
      c,
      c === null ? extra : null,
    ).start();
  if (backend.chain.request.length === 0) return go(ctx);
  const c = ctx ?? contextOf(routed, req, lctx);
  if (extra !== null)
    for (let i = 0; i < extra.length; i += 2) c.editResponse(["set", extra[i]!, extra[i + 1]!]);
  runSteps(c, [backend.chain.request], (reply, err) => {
    if (err !== undefined) return chainFailed(core, req, res, r, err, lctx);
    if (res.destroyed || res.writableEnded) return;
    if (reply !== null) return localReply(core, req, res, r, start, reply, c);
    go(c);
  });
}

/** A local reply as status line parts: the body and headers any sink (response, socket) writes. */
function renderReply(
  reply: LocalReply,
  ctx: RequestContext | null,
): { headers: string[]; body: Buffer } {
  const body =
    reply.body !== undefined
      ? Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength)
      : Buffer.from(errorBody(reply.status, reply.detail ?? ""));
  let headers: string[] = [];
  let typed = false;
  if (reply.headers !== undefined)
    for (const [k, v] of reply.headers) {
      if (k === "content-length" || HOP_BY_HOP.has(k)) continue;
      if (k === "content-type") typed = true;
      headers.push(k, v);
    }
  if (!typed && reply.body === undefined) headers.push("content-type", TEXT);
  if (ctx !== null && ctx.responseEdits !== null)
    headers = applyResponseEdits(headers, ctx.responseEdits);
  headers.push("content-length", String(body.length));
  return { headers, body };
}

function localReply(
  core: ProxyCore,
  req: DownstreamRequest,
  res: DownstreamResponse,
  r: PreparedRoute,
  start: number,
  reply: LocalReply,
  ctx: RequestContext | null = null,
) {
  if (res.headersSent) cutResponse(res);
  else if (reply.status >= 400 && isGrpcRequest(req.headers)) sendGrpcLocalReply(res, reply, ctx);
  else {
    const { headers, body } = renderReply(reply, ctx);
    if (isHttp2(req)) (res as Http2ServerResponse).writeHead(reply.status, pairsToObject(headers));
    else {
      // RFC 9110 §15.5.9: a 408 closes the connection; the rest of that body is not coming
      if (reply.status === 408) (res as ServerResponse).shouldKeepAlive = false;
      (res as ServerResponse).writeHead(reply.status, headers);
    }
    if (req.method === "HEAD") res.end();
    else res.end(body);
  }
  r.metrics.record(reply.status, (performance.now() - start) / 1000);
  requestEnded(core, req, reply.status, r.id, start, reply.detail);
}

// A plugin's or filter's answer to a gRPC call, as the gRPC status its HTTP status stands for;
// its headers (WWW-Authenticate, Retry-After, …) go along, its body becomes the grpc-message.
function sendGrpcLocalReply(
  res: DownstreamResponse,
  reply: LocalReply,
  ctx: RequestContext | null,
) {
  const { headers, body } = renderReply(reply, ctx);
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i]!, headers[i + 1]!]);
  const message =
    reply.body !== undefined
      ? body.toString("utf8", 0, Math.min(body.length, 1024))
      : (reply.detail ?? "");
  sendGrpcReply(res, grpcReplyHeaders(reply.status, message, pairs));
}

function pairsToObject(headers: string[]): Record<string, string | string[]> {
  const obj: Record<string, string | string[]> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i]!.toLowerCase();
    const v = headers[i + 1]!;
    const prev = obj[k];
    if (prev === undefined) obj[k] = v;
    else if (k === "set-cookie") obj[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
    else obj[k] = `${prev as string}, ${v}`;
  }
  return obj;
}

function pickBackend(r: PreparedRoute): PreparedBackend | null {
  const n = r.backends.length;
  if (n === 0 || r.totalWeight === 0) return null;
  if (n === 1) return r.backends[0]!;
  const x = Math.random() * r.totalWeight;
  const cum = r.cumulative;
  for (let i = 0; i < n; i++) if (x < cum[i]!) return r.backends[i]!;
  return r.backends[n - 1]!;
}

function accessLog(
  core: ProxyCore,
  req: DownstreamRequest,
  status: number,
  routeId: string,
  start: number,
  span: RequestSpan | undefined,
) {
  core.logger.info("access", {
    method: req.method,
    authority: req.headers.host ?? req.headers[":authority"],
    path: req.url,
    status,
    route: routeId,
    durationMs: Math.round((performance.now() - start) * 1000) / 1000,
    client: clientAddress(req),
    ...(span !== undefined ? { traceId: span.traceId, sampled: span.sampled } : {}),
  });
}

// Request headers for the upstream: drops hop-by-hop headers, names listed in Connection, the
// plan's removed/overwritten names and pseudo-headers; sets Host and the X-Forwarded-* family.
export function upstreamRequestHeaders(
  req: DownstreamRequest,
  plan: HeaderPlan | null,
  host: string,
  authority: string,
  scheme: string,
  forwarded: boolean,
  changed: Pairs | null = null,
): string[] {
  const raw = changed === null ? req.rawHeaders : flatPairs(changed);
  const conn = connectionTokens(headerString(req.headers.connection));
  const out: string[] = [];
  let xff: string | undefined;
  let via: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const l = lowerIfNeeded(name);
    if (HOP_BY_HOP.has(l)) continue;
    let value = raw[i + 1]!;
    switch (l) {
      case "host":
      case "x-forwarded-proto":
      case "x-forwarded-host":
      case "expect":
        continue;
      case "x-forwarded-for":
        xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
        continue;
      case "via":
        if (conn === null || !conn.has(l)) via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case "max-forwards":
        // RFC 9110 §7.6.2: decremented on OPTIONS and TRACE (0 was answered without forwarding)
        if ((req.method === "OPTIONS" || req.method === "TRACE") && /^\d{1,15}$/.test(value))
          value = String(Math.max(0, Number(value) - 1));
        break;
      case "forwarded":
        if (forwarded) continue;
    }
    if (conn !== null && conn.has(l)) continue;
    if (plan !== null && plan.drop.has(l)) continue;
    out.push(name, value);
  }
  if (isHttp2(req)) joinCookies(out);
  // the address this gateway saw: the hop it appends
  const client = peerAddress(req);
  out.push(
    "host",
    host,
    "x-forwarded-for",
    xff === undefined ? client : `${xff}, ${client}`,
    "x-forwarded-proto",
    scheme,
    "x-forwarded-host",
    authority,
  );
  // RFC 9110 §7.6.3: a gateway adds Via to each request it forwards (unless a filter removes it)
  if (plan === null || !plan.drop.has("via")) {
    const own = isHttp2(req) ? "2 rauta" : `${req.httpVersionMajor}.${req.httpVersionMinor} rauta`;
    out.push("via", via === undefined ? own : `${via}, ${own}`);
  }
  if (forwarded) {
    const prior = headerString(req.headers.forwarded);
    const forNode = client.includes(":") ? `"[${client}]"` : client;
    const hostPart = authority ? `;host="${authority.replace(/["\\]/g, "")}"` : "";
    const own = `for=${forNode}${hostPart};proto=${scheme}`;
    out.push("forwarded", prior ? `${prior}, ${own}` : own);
  }
  if (plan !== null) appendPlan(out, plan);
  return out;
}

// [[name, value], ...] as [name, value, ...] (Array.prototype.flat is several times slower)
function flatPairs(pairs: Pairs): string[] {
  const out = new Array<string>(pairs.length * 2);
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i]!;
    out[2 * i] = p[0];
    out[2 * i + 1] = p[1];
  }
  return out;
}

// HTTP/2 may split Cookie into several fields; an HTTP/1.1 upstream must get exactly one,
// joined with "; " (RFC 9113 §8.2.3).
function joinCookies(out: string[]) {
  let first = -1;
  for (let i = 0; i < out.length; i += 2) {
    if (out[i]!.toLowerCase() !== "cookie") continue;
    if (first === -1) first = i;
    else {
      out[first + 1] = `${out[first + 1]}; ${out[i + 1]}`;
      out.splice(i, 2);
      i -= 2;
    }
  }
}

function classify(err: Error & { code?: string }): {
  status: number;
  kind: string;
  detail: string;
} {
  const code = err.code ?? "";
  if (
    code === "RAUTA_BACKEND_TIMEOUT" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT"
  ) {
    return { status: 504, kind: "timeout", detail: "upstream timed out" };
  }
  if (
    code === "ECONNREFUSED" ||
    code === "UND_ERR_CONNECT_TIMEOUT" ||
    code === "EHOSTUNREACH" ||
    code === "ENETUNREACH" ||
    code === "ENOTFOUND" ||
    code === "EADDRNOTAVAIL"
  ) {
    return { status: 503, kind: "connect", detail: `upstream connect error (${code})` };
  }
  if (code === "UND_ERR_CLOSED" || code === "UND_ERR_DESTROYED") {
    return { status: 503, kind: "connect", detail: "upstream pool closed" };
  }
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE") {
    return { status: 502, kind: "reset", detail: "upstream reset the connection" };
  }
  return {
    status: 502,
    kind: "protocol",
    detail: `bad upstream response (${code || err.message})`,
  };
}

const timeoutError = () =>
  Object.assign(new Error("backend request timeout"), { code: "RAUTA_BACKEND_TIMEOUT" });

// One proxied request/response exchange; each try is an Attempt (undici's handler).
class Exchange {
  readonly core: ProxyCore;
  readonly lctx: ListenerContext;
  readonly gen: Generation;
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  readonly route: PreparedRoute;
  readonly entry: MatchedEntry<PreparedRoute>;
  readonly view: RequestView;
  readonly backend: PreparedBackend;
  readonly cluster: ClusterRuntime;
  readonly authority: string;
  readonly startedAt: number;
  /** what the chain changed (null: a plain route) */
  readonly ctx: RequestContext | null;
  /** the hash cookie to set on the response (a cluster with hashOn Cookie; hash-key.ts) */
  setCookie: string | null = null;
  /** headers the response gets from the request path without a context (the rate limit's) */
  readonly extraHeaders: string[] | null;
  readonly isH2: boolean;
  /** a gRPC call: local errors answer in gRPC's form, the client's deadline is honoured */
  readonly grpc: boolean;
  headers: string[] = [];
  path = "";
  hasBody = false;
  /** the request body when it is not the request stream itself: replayed after a plugin read
   * it ahead (needsBody), or teed to mirrors */
  body: Readable | null = null;
  attempt: Attempt | null = null;
  tries = 0;
  retrying = false;
  finished = false;
  status = 0;
  requestTimer: NodeJS.Timeout | null = null;
  span: RequestSpan | null = null;

  constructor(
    core: ProxyCore,
    lctx: ListenerContext,
    gen: Generation,
    req: DownstreamRequest,
    res: DownstreamResponse,
    route: PreparedRoute,
    entry: MatchedEntry<PreparedRoute>,
    view: RequestView,
    backend: PreparedBackend,
    cluster: ClusterRuntime,
    authority: string,
    start: number,
    ctx: RequestContext | null,
    extraHeaders: string[] | null = null,
  ) {
    this.extraHeaders = extraHeaders;
    this.core = core;
    this.lctx = lctx;
    this.gen = gen;
    this.req = req;
    this.res = res;
    this.route = route;
    this.entry = entry;
    this.view = view;
    this.backend = backend;
    this.cluster = cluster;
    this.authority = authority;
    this.startedAt = start;
    this.ctx = ctx;
    this.isH2 = isHttp2(req);
    this.grpc = isGrpcRequest(req.headers);
  }

  start(): void {
    const r = this.route;
    const ctx = this.ctx;
    let path = ctx === null ? this.view.path : ctx.path;
    const query = ctx === null ? this.view.query : ctx.query;
    if (r.rewritePath !== undefined)
      path = rewritePath(path, r.rewritePath, this.entry.prefixLength);
    this.path = query === "" ? path : `${path}?${query}`;
    this.headers = upstreamRequestHeaders(
      this.req,
      this.backend.request,
      ctx?.upstreamAuthority ?? r.rewriteHost ?? this.authority,
      this.authority,
      this.lctx.scheme,
      this.core.options.forwardedHeader,
      ctx?.headers ?? null,
    );
    this.span = requestSpans.get(this.req) ?? null;
    if (this.span !== null) setTraceContext(this.headers, this.span);
    this.hasBody = hasRequestBody(this.req);
    if (this.hasBody && ctx?.body != null) this.body = ctx.body.replay();
    this.gen.inflight++;
    this.res.once("close", this.onDownstreamClose);
    let timeoutMs = r.requestTimeoutMs;
    if (this.grpc) {
      // the client gives up at its deadline anyway: end the call then, upstream too
      const deadline = grpcTimeoutMs(this.req.headers["grpc-timeout"]);
      if (deadline !== null && (timeoutMs === 0 || deadline < timeoutMs)) timeoutMs = deadline;
    }
    if (timeoutMs > 0)
      this.requestTimer = setTimeout(() => this.guarded(() => this.onRequestTimeout()), timeoutMs);
    if (r.mirrors.length) this.mirror();
    this.dispatch();
  }

  // Fire-and-forget copies. A body is teed: the main request gets the client's backpressure, a
  // mirror that cannot keep up is dropped (its upstream sees a cut request) — a mirror never
  // slows the main exchange.
  private mirror() {
    let copies: PassThrough[] | null = null;
    for (const m of this.route.mirrors) {
      if (m.numerator < m.denominator && Math.random() * m.denominator >= m.numerator) continue;
      const ep = m.cluster.pick(null);
      if (ep === null) {
        this.core.metrics.mirrors.labels(m.cluster.id, "no_endpoint").inc();
        continue;
      }
      let body: PassThrough | null = null;
      if (this.hasBody) {
        body = new PassThrough({ highWaterMark: 256 * 1024 });
        body.on("error", () => {});
        (copies ??= []).push(body);
      }
      try {
        ep.pool.dispatch(
          {
            path: this.path,
            method: this.req.method as Dispatcher.HttpMethod,
            headers: this.headers,
            body,
            servername: m.cluster.servername,
          } satisfies UpstreamDispatchOptions as Dispatcher.DispatchOptions,
          new MirrorHandler(this.core.metrics, m.cluster.id),
        );
      } catch {
        this.core.metrics.mirrors.labels(m.cluster.id, "error").inc();
      }
    }
    if (copies === null) return;
    const req: Readable = this.body ?? (this.req as IncomingMessage);
    const main = new PassThrough();
    this.body = main;
    const mirrors = copies;
    req.on("data", (chunk: Buffer) => {
      for (const c of mirrors)
        if (!c.destroyed && !c.write(chunk)) c.destroy(new Error("mirror too slow"));
      if (!main.write(chunk)) req.pause();
    });
    main.on("drain", () => req.resume());
    req.on("end", () => {
      main.end();
      for (const c of mirrors) if (!c.destroyed) c.end();
    });
    req.on("error", err => {
      main.destroy(err);
      for (const c of mirrors) c.destroy(err);
    });
  }

  dispatch(): void {
    if (this.finished) return;
    let hashKey: string | null = null;
    if (this.cluster.config.lb === "maglev") {
      const h = hashKeyFor(this.cluster.config.hashOn, clientAddress(this.req), this.req.headers);
      hashKey = h.key;
      this.setCookie = h.setCookie;
    }
    const ep = this.cluster.pick(hashKey);
    if (ep === null) {
      this.fail(503, `no healthy endpoint for cluster ${this.cluster.id}`);
      return;
    }
    if (!this.cluster.state.breaker.allow()) {
      this.fail(503, `circuit breaker open for cluster ${this.cluster.id}`);
      return;
    }
    this.tries++;
    this.cluster.active++;
    ep.health.inflight++;
    this.span?.upstream(this.cluster.id, ep.address, ep.port, this.tries);
    const a = new Attempt(this, ep);
    this.attempt = a;
    const r = this.route;
    if (r.backendTimeoutMs > 0)
      a.timer = setTimeout(() => this.guarded(() => a.onTimeout()), r.backendTimeoutMs);
    try {
      const options: UpstreamDispatchOptions = {
        path: this.path,
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.hasBody ? (this.body ?? (this.req as IncomingMessage)) : null,
        servername: this.cluster.servername,
      };
      if (r.upstreamTimeoutMs !== null) {
        options.headersTimeout = r.upstreamTimeoutMs;
        options.bodyTimeout = r.upstreamTimeoutMs;
      }
      ep.pool.dispatch(options, a);
    } catch (err) {
      a.onError(err as Error);
    }
  }

  canRetry(): boolean {
    const retry = this.route.retry;
    if (retry === null || this.tries > retry.attempts || this.hasBody || this.finished)
      return false;
    if (!IDEMPOTENT.has(this.req.method ?? "")) return false;
    const c = this.cluster;
    const budget = Math.max(
      this.core.options.retryBudgetMin,
      c.active * this.core.options.retryBudgetRatio,
    );
    return c.retriesActive < budget;
  }

  scheduleRetry(reason: string): void {
    const retry = this.route.retry!;
    const base = Math.min(retry.backoffMs * 2 ** (this.tries - 1), 1000);
    const delay = base / 2 + (Math.random() * base) / 2; // exponential backoff, equal jitter
    this.span?.retry(this.tries, reason, delay);
    this.core.metrics.retries.labels(this.cluster.id).inc();
    this.retrying = true;
    this.cluster.retriesActive++;
    setTimeout(() => {
      this.cluster.retriesActive--;
      this.retrying = false;
      this.guarded(() => this.dispatch());
    }, delay);
  }

  fail(status: number, detail: string): void {
    if (this.finished) return;
    if (this.res.headersSent) {
      cutResponse(this.res);
      this.finish(status);
      return;
    }
    sendLocal(this.res, status, detail);
    this.finish(status);
  }

  /** Ends this exchange with a local reply (a plugin's answer, an error) if nothing was sent yet. */
  reply(reply: LocalReply): void {
    if (this.finished) return;
    if (this.res.headersSent) {
      cutResponse(this.res);
      this.finish(reply.status);
      return;
    }
    if (this.grpc && reply.status >= 400) {
      sendGrpcLocalReply(this.res, reply, this.ctx);
      this.finish(reply.status);
      return;
    }
    const { headers, body } = renderReply(reply, this.ctx);
    if (this.isH2)
      (this.res as Http2ServerResponse).writeHead(reply.status, pairsToObject(headers));
    else (this.res as ServerResponse).writeHead(reply.status, headers);
    if (this.req.method === "HEAD") this.res.end();
    else this.res.end(body);
    this.finish(reply.status);
  }

  private responseStepsCache: ResponseStep[] | null = null;

  /** on_response plugins in reverse request order: backend's, route's, then the Gateway's. */
  responseSteps(): ResponseStep[] {
    if (this.responseStepsCache !== null) return this.responseStepsCache;
    const b = this.backend.chain.response;
    const r = this.route.late.response;
    const l = this.ctx?.pl.chain.response ?? NO_RESPONSE_STEPS;
    const all = b.length + r.length + l.length === 0 ? NO_RESPONSE_STEPS : [...b, ...r, ...l];
    this.responseStepsCache = all;
    return all;
  }

  /** Ends this exchange after a failure of ours (contained): 500, or a cut response. */
  internalError(): void {
    if (this.finished) return;
    const a = this.attempt;
    this.attempt = null;
    if (a !== null) a.cancel(new Error("internal error"), false);
    endWithInternalError(this.res as ServerResponse);
    this.finish(500);
  }

  /** A timer or event callback of this exchange, contained like undici's callbacks. */
  guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      reportContained(this.core, "timer", err, {
        ...requestContext(this.lctx, this.req),
        route: this.route.id,
      });
      this.internalError();
    }
  }

  /** the grpc-status the backend answered with (headers of a trailers-only answer, or trailers) */
  private grpcStatus: string | undefined = undefined;

  recordGrpc(value: string | string[] | undefined): void {
    if (typeof value === "string") this.grpcStatus = value;
  }

  finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.status = status;
    if (this.grpc)
      this.core.metrics.grpcResponses
        .labels(
          this.route.id,
          // a call the gateway answered itself, or one cut off without a status (reset: 2)
          this.grpcStatus ?? String(status >= 400 ? grpcStatusFor(status) : GrpcStatus.UNKNOWN),
        )
        .inc();
    if (this.requestTimer !== null) clearTimeout(this.requestTimer);
    this.gen.inflight--;
    this.route.metrics.record(status, (performance.now() - this.startedAt) / 1000);
    requestEnded(this.core, this.req, status, this.route.id, this.startedAt);
  }

  onDownstreamClose = (): void => this.guarded(this.downstreamClosed);

  private downstreamClosed = (): void => {
    if (this.finished) return;
    // the client went away before the response ended
    const a = this.attempt;
    this.attempt = null;
    a?.cancel(new Error("downstream closed"), false);
    this.finish(499);
  };

  onRequestTimeout(): void {
    this.requestTimer = null;
    if (this.finished) return;
    const a = this.attempt;
    this.attempt = null;
    a?.cancel(timeoutError(), true);
    this.fail(504, "request timeout");
  }
}

class Attempt implements Dispatcher.DispatchHandler {
  private readonly ex: Exchange;
  private readonly ep: UpstreamEndpoint;
  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private cancelled = false;
  private completed = false;
  private headersWritten = false;
  timer: NodeJS.Timeout | null = null;

  constructor(ex: Exchange, ep: UpstreamEndpoint) {
    this.ex = ex;
    this.ep = ep;
  }

  /**
   * Stops this attempt; its callbacks are ignored from now on. `blameUpstream` is false when the
   * client went away: that says nothing about the endpoint, so neither the circuit breaker nor
   * outlier detection hears of it.
   */
  cancel(err: Error, blameUpstream: boolean): void {
    if (this.cancelled || this.completed) return;
    this.cancelled = true;
    this.settle("failed", blameUpstream);
    if (this.abortFn !== null) this.abortFn(err);
  }

  onTimeout(): void {
    this.timer = null;
    if (this.cancelled || this.completed) return;
    if (this.abortFn !== null) this.abortFn(timeoutError());
    else this.onError(timeoutError());
  }

  private settle(outcome: AttemptOutcome, record = true) {
    if (this.completed) return;
    this.completed = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const c = this.ex.cluster;
    c.active--;
    this.ep.health.inflight--;
    if (record) {
      c.state.breaker.recordOutcome(outcome);
      c.report(this.ep, outcome === "ok");
    } else c.state.breaker.release();
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelled) {
      abort(new Error("cancelled"));
      return;
    }
    this.abortFn = abort;
  }

  // undici's callbacks: each one contained (server/contain.ts) so that a failure in ours ends
  // this exchange, not the worker.
  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    try {
      return this.headers(statusCode, raw, resume);
    } catch (err) {
      this.crash(err);
      return false;
    }
  }

  onData(chunk: Buffer): boolean {
    try {
      return this.data(chunk);
    } catch (err) {
      this.crash(err);
      return false;
    }
  }

  onComplete(trailers?: unknown): void {
    try {
      this.complete(trailers);
    } catch (err) {
      this.crash(err);
    }
  }

  onError(err: Error): void {
    try {
      this.error(err);
    } catch (e) {
      this.crash(e);
    }
  }

  private crash(err: unknown) {
    const ex = this.ex;
    reportContained(ex.core, "upstream", err, {
      ...requestContext(ex.lctx, ex.req),
      route: ex.route.id,
      cluster: ex.cluster.id,
    });
    if (!this.cancelled) {
      this.cancelled = true;
      this.settle("failed", false);
      try {
        this.abortFn?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // the connection is being torn down anyway
      }
    }
    if (ex.attempt === this) ex.attempt = null;
    ex.internalError();
  }

  private headers(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (this.cancelled) return false;
    if (statusCode < 200) return true;
    const ex = this.ex;
    const retry = ex.route.retry;
    if (retry !== null && retry.codes.has(statusCode) && ex.canRetry()) {
      this.ex.core.metrics.upstreamErrors.labels(ex.cluster.id, "status").inc();
      this.cancelled = true;
      this.settle(statusCode < 500 ? "ok" : "error-status");
      this.abortFn?.(new Error("retrying"));
      ex.scheduleRetry(`status ${statusCode}`);
      return false;
    }
    this.resumeFn = resume;
    const plan = ex.backend.response;
    const ctx = ex.ctx;
    if (ex.isH2 && ctx === null) {
      // the plain HTTP/2 path: straight into the object writeHead wants
      const obj: Record<string, string | string[]> = {};
      for (let i = 0; i < raw.length; i += 2) {
        const l = raw[i]!.toString("latin1").toLowerCase();
        if (HOP_BY_HOP.has(l) || (plan !== null && plan.drop.has(l))) continue;
        const v = raw[i + 1]!.toString("latin1");
        const prev = obj[l];
        if (prev === undefined) obj[l] = v;
        else if (l === "set-cookie") obj[l] = Array.isArray(prev) ? [...prev, v] : [prev, v];
        else obj[l] = `${prev as string}, ${v}`;
      }
      if (plan !== null) {
        const extra: string[] = [];
        appendPlan(extra, plan);
        for (let i = 0; i < extra.length; i += 2) obj[extra[i]!.toLowerCase()] = extra[i + 1]!;
      }
      return this.writeHead(statusCode, obj);
    }
    const out: string[] = [];
    let conn: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString("latin1");
      const l = lowerIfNeeded(name);
      if (HOP_BY_HOP.has(l)) {
        if (l === "connection") conn = raw[i + 1]!.toString("latin1");
        continue;
      }
      if (plan !== null && plan.drop.has(l)) continue;
      out.push(name, raw[i + 1]!.toString("latin1"));
    }
    const tokens = connectionTokens(conn);
    let headers = out;
    if (tokens !== null) {
      headers = [];
      for (let i = 0; i < out.length; i += 2)
        if (!tokens.has(out[i]!.toLowerCase())) headers.push(out[i]!, out[i + 1]!);
    }
    if (plan !== null) appendPlan(headers, plan);
    if (ctx === null) return this.writeHead(statusCode, headers);
    const steps = ex.responseSteps();
    if (steps.length > 0) {
      let want = 0;
      for (const st of steps) want = Math.max(want, st.bodyBytes);
      if (want > 0) {
        // a needsBody plugin decides on the body too: hold it back (data, complete) until
        // more than `want` bytes or the whole of it arrived
        this.heldHead = { status: statusCode, headers, steps, want };
        return true;
      }
      // on_response plugins run before the head goes out: undici holds the body meanwhile
      this.runResponseSteps(statusCode, headers, steps, 0);
      return false;
    }
    if (ctx.responseEdits !== null) headers = applyResponseEdits(headers, ctx.responseEdits);
    return this.writeHead(statusCode, headers);
  }

  private writeHead(
    statusCode: number,
    headers: string[] | Record<string, string | string[]>,
  ): boolean {
    const ex = this.ex;
    if (ex.extraHeaders !== null) {
      if (Array.isArray(headers)) headers.push(...ex.extraHeaders);
      else
        for (let i = 0; i < ex.extraHeaders.length; i += 2)
          headers[ex.extraHeaders[i]!] = ex.extraHeaders[i + 1]!;
    }
    if (ex.setCookie !== null) {
      // session persistence: the hash cookie this client did not send (hash-key.ts)
      if (Array.isArray(headers)) headers.push("set-cookie", ex.setCookie);
      else {
        const prev = headers["set-cookie"];
        headers["set-cookie"] =
          prev === undefined ? ex.setCookie : [...[prev].flat(), ex.setCookie];
      }
    }
    if (ex.grpc && ex.isH2) {
      // held for this tick: a response that ends with its headers (gRPC's trailers-only form,
      // delivered by the pool in the same tick) must leave as one HEADERS frame ending the
      // stream, which the compatibility writeHead cannot do once it has sent them
      this.grpcHead = {
        status: statusCode,
        headers: Array.isArray(headers) ? pairsToObject(headers) : headers,
      };
      this.headersWritten = true;
      ex.status = statusCode;
      process.nextTick(this.flushGrpcHead);
      return true;
    }
    try {
      if (!ex.isH2) (ex.res as ServerResponse).writeHead(statusCode, headers as string[]);
      else
        (ex.res as Http2ServerResponse).writeHead(
          statusCode,
          Array.isArray(headers) ? pairsToObject(headers) : headers,
        );
    } catch (err) {
      this.headRejected(err as Error);
      return false;
    }
    this.headersWritten = true;
    ex.status = statusCode;
    return true;
  }

  private grpcHead: { status: number; headers: Record<string, string | string[]> } | null = null;

  private readonly flushGrpcHead = (): void => {
    const head = this.grpcHead;
    if (head === null || this.cancelled) return;
    this.grpcHead = null;
    try {
      (this.ex.res as Http2ServerResponse).writeHead(head.status, head.headers);
    } catch (err) {
      this.headersWritten = false;
      this.headRejected(err as Error);
    }
  };

  /** a head held back while its body is read for needsBody response plugins */
  private heldHead: {
    status: number;
    headers: string[];
    steps: ResponseStep[];
    want: number;
  } | null = null;
  private heldBytes = 0;

  /** Enough of the body is here (or all of it): run the response steps on it. */
  private releaseHeld(): void {
    const h = this.heldHead;
    if (h === null) return;
    this.heldHead = null;
    const { joined, view } = bodyView(this.pending ?? [], h.want);
    this.pending = [joined];
    this.runResponseSteps(h.status, h.headers, h.steps, 0, view);
  }

  private runResponseSteps(
    status: number,
    headers: string[],
    steps: ResponseStep[],
    i: number,
    body?: BodyView,
  ): void {
    const ex = this.ex;
    const ctx = ex.ctx!;
    if (this.cancelled) return;
    if (i === steps.length) {
      const final =
        ctx.responseEdits === null ? headers : applyResponseEdits(headers, ctx.responseEdits);
      if (!this.writeHead(status, final)) return;
      this.flushPending();
      this.resumeFn?.();
      return;
    }
    steps[i]!.run(ctx, status, headers, body).then(
      reply => {
        if (this.cancelled) return;
        if (reply === null) return this.runResponseSteps(status, headers, steps, i + 1, body);
        // the plugin answers instead of the upstream: drop the upstream response
        this.cancelled = true;
        this.settle(status < 500 ? "ok" : "error-status");
        try {
          this.abortFn?.(new Error("response replaced by a plugin"));
        } catch {
          // the connection is being torn down anyway
        }
        ex.attempt = null;
        ex.reply(reply);
      },
      err => this.crash(err),
    );
  }

  // Body chunks or the end that arrive while on_response plugins run (an upstream that does not
  // honour the pause) wait here until the head is out.
  private pending: Buffer[] | null = null;
  private completePending = false;

  private flushPending() {
    const chunks = this.pending;
    this.pending = null;
    if (chunks !== null) for (const c of chunks) this.data(c);
    if (this.completePending) {
      this.completePending = false;
      this.complete(this.pendingTrailers);
    }
  }

  // Node validates what it writes; an upstream head it refuses (or a client already gone) must
  // end this exchange with a 502, never throw into undici's parser callback.
  private headRejected(err: Error & { code?: string }) {
    const ex = this.ex;
    this.cancelled = true;
    this.settle("failed");
    this.abortFn?.(err);
    ex.attempt = null;
    ex.core.metrics.upstreamErrors.labels(ex.cluster.id, "protocol").inc();
    ex.fail(502, `upstream response head rejected (${err.code ?? err.message})`);
  }

  private data(chunk: Buffer): boolean {
    if (this.cancelled) return false;
    if (!this.headersWritten) {
      (this.pending ??= []).push(chunk);
      if (this.heldHead === null) return false;
      this.heldBytes += chunk.length;
      if (this.heldBytes <= this.heldHead.want) return true;
      this.releaseHeld();
      return false;
    }
    if (this.grpcHead !== null) {
      this.flushGrpcHead();
      if (this.cancelled) return false;
    }
    const res = this.ex.res;
    const ok = (res as ServerResponse).write(chunk);
    if (!ok) res.once("drain", () => this.resumeFn?.());
    return ok;
  }

  private complete(trailers?: unknown): void {
    if (this.cancelled) return;
    if (!this.headersWritten) {
      this.completePending = true;
      this.pendingTrailers = trailers;
      this.releaseHeld();
      return;
    }
    const ex = this.ex;
    this.settle(ex.status < 500 ? "ok" : "error-status");
    ex.attempt = null;
    const passed = ex.isH2 ? trailerObject(trailers ?? this.pendingTrailers) : null;
    const head = this.grpcHead;
    if (head !== null && passed === null) {
      // headers that ended the stream upstream end it here too
      this.grpcHead = null;
      sendGrpcReply(ex.res, head.headers);
      ex.recordGrpc(head.headers["grpc-status"]);
      ex.finish(ex.status);
      return;
    }
    if (head !== null) this.flushGrpcHead();
    if (passed !== null && !ex.res.destroyed) {
      // HTTP/2 carries trailers (gRPC's status lives there); HTTP/1.1 responses get none
      (ex.res as Http2ServerResponse).addTrailers(passed);
      if (ex.grpc) ex.recordGrpc(passed["grpc-status"]);
    } else if (ex.grpc) ex.recordGrpc(head?.headers["grpc-status"]);
    ex.res.end();
    ex.finish(ex.status);
  }

  private pendingTrailers: unknown = undefined;

  private error(err: Error): void {
    if (this.cancelled) return;
    // this attempt is over, whatever follows: an error we raised ourselves (the backendRequest
    // timer firing while undici still queues the request) leaves the request with undici, and
    // onConnect must then abort it instead of sending it after the client got its 504
    this.cancelled = true;
    const ex = this.ex;
    const c = classify(err as Error & { code?: string });
    this.settle("failed");
    ex.core.metrics.upstreamErrors.labels(ex.cluster.id, c.kind).inc();
    ex.attempt = null;
    if (!this.headersWritten && c.kind !== "protocol" && ex.canRetry()) {
      ex.scheduleRetry(c.kind);
      return;
    }
    if (this.headersWritten) {
      // too late for an error status: cut the downstream response so the client sees it
      cutResponse(ex.res);
      ex.finish(ex.status);
      return;
    }
    ex.fail(c.status, c.detail);
  }
}

// Upstream trailers as writeHead-style headers: raw pairs from undici's HTTP/1 client (Buffers)
// or from ours (upstream/h2-pool.ts, strings). null when there are none.
function trailerObject(trailers: unknown): Record<string, string> | null {
  if (!Array.isArray(trailers)) return null;
  const out: Record<string, string> = {};
  let any = false;
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    const l = String(trailers[i]).toLowerCase();
    if (HOP_BY_HOP.has(l) || l.charCodeAt(0) === 58 /* : */) continue;
    const v = String(trailers[i + 1]);
    out[l] = out[l] === undefined ? v : `${out[l]}, ${v}`;
    any = true;
  }
  return any ? out : null;
}

class MirrorHandler implements Dispatcher.DispatchHandler {
  private readonly metrics: Metrics;
  private readonly clusterId: string;
  constructor(metrics: Metrics, clusterId: string) {
    this.metrics = metrics;
    this.clusterId = clusterId;
  }
  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    this.metrics.mirrors.labels(this.clusterId, "ok").inc();
  }
  onError(): void {
    this.metrics.mirrors.labels(this.clusterId, "error").inc();
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 Upgrade (WebSocket and others): routed like a request, then a raw tunnel between the
// client socket and the upstream socket undici hands over after 101.

export function handleUpgrade(
  core: ProxyCore,
  lctx: ListenerContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
) {
  const start = performance.now();
  socket.on("error", () => socket.destroy());
  const routed = route(core, lctx, req);
  if (routed.failed) {
    writeRawReply(
      socket,
      {
        status: routed.status,
        detail: routed.detail,
        headers: routed.headers ? Object.entries(routed.headers) : [],
      },
      null,
    );
    core.noRouteMetrics.record(routed.status, (performance.now() - start) / 1000);
    startSpan(core.current?.listeners.get(lctx.socket), lctx, req, null, null)?.end(
      routed.status,
      null,
      routed.detail,
    );
    return;
  }
  const r = routed.entry.route;
  // an upgrade runs the same chain as a plain request: limits, CORS, plugins, rate limit, redirect
  const reply = (rep: LocalReply, ctx: RequestContext | null) => {
    writeRawReply(socket, rep, ctx);
    r.metrics.record(rep.status, (performance.now() - start) / 1000);
    requestEnded(core, req, rep.status, r.id, start, rep.detail);
  };
  const client = routed.pl.listener.client;
  trustForwardedFor(req, client?.trustedHops);
  if (routed.pl.tracer !== null) startSpan(routed.pl, lctx, req, r.id, routed.view);
  const maxHeaders = client?.maxHeaderCount ?? core.options.maxHeaderCount;
  if (req.rawHeaders.length >> 1 > maxHeaders)
    return reply({ status: 431, detail: `more than ${maxHeaders} request headers` }, null);
  const failed = (err: unknown) => {
    reportContained(core, "upgrade", err, { ...requestContext(lctx, req), route: r.id });
    endSocketWithInternalError(socket);
  };
  const upstream = (ctx: RequestContext | null) => {
    const backend = pickBackend(r);
    if (backend === null || backend.cluster === null)
      return reply({ status: 500, detail: "the route has no valid backend" }, ctx);
    if (backend.chain.request.length === 0)
      return tunnel(core, lctx, routed, req, socket, head, start, backend, ctx, reply);
    const c = ctx ?? contextOf(routed, req, lctx);
    runSteps(c, [backend.chain.request], (rep, err) => {
      if (err !== undefined) return failed(err);
      if (rep !== null) return reply(rep, c);
      tunnel(core, lctx, routed, req, socket, head, start, backend, c, reply);
    });
  };
  if (!r.hasChain && routed.pl.chain.request.length === 0) {
    const verdict = r.limit?.admit(req, clientAddress(req), r.id);
    if (verdict !== undefined && !Array.isArray(verdict)) return reply(verdict, null);
    return upstream(null);
  }
  const ctx = contextOf(routed, req, lctx);
  runSteps(ctx, [r.early.request, routed.pl.chain.request, r.late.request], (rep, err) => {
    if (err !== undefined) return failed(err);
    if (socket.destroyed) return;
    if (rep !== null) return reply(rep, ctx);
    upstream(ctx);
  });
}

function writeRawReply(socket: Duplex, rep: LocalReply, ctx: RequestContext | null) {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { headers, body } = renderReply(rep, ctx);
  let head = `HTTP/1.1 ${rep.status} ${REASONS[rep.status] ?? "Response"}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  socket.end(Buffer.concat([Buffer.from(`${head}connection: close\r\n\r\n`, "latin1"), body]));
}

function tunnel(
  core: ProxyCore,
  lctx: ListenerContext,
  routed: Routed,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  start: number,
  backend: PreparedBackend,
  ctx: RequestContext | null,
  reply: (rep: LocalReply, ctx: RequestContext | null) => void,
) {
  const r = routed.entry.route;
  const cluster = backend.cluster!;
  // an upgrade without the hash cookie gets one on its 101 (RFC 6455 §4.1 allows cookies there)
  const hash =
    cluster.config.lb === "maglev"
      ? hashKeyFor(cluster.config.hashOn, clientAddress(req), req.headers)
      : null;
  const ep = cluster.pick(hash === null ? null : hash.key);
  if (ep === null)
    return reply({ status: 503, detail: `no healthy endpoint for cluster ${cluster.id}` }, ctx);
  if (!cluster.state.breaker.allow())
    return reply({ status: 503, detail: `circuit breaker open for cluster ${cluster.id}` }, ctx);
  let path = ctx === null ? routed.view.path : ctx.path;
  const query = ctx === null ? routed.view.query : ctx.query;
  if (r.rewritePath !== undefined)
    path = rewritePath(path, r.rewritePath, routed.entry.prefixLength);
  if (query) path += `?${query}`;
  const headers = upstreamRequestHeaders(
    req,
    backend.request,
    ctx?.upstreamAuthority ?? r.rewriteHost ?? routed.authority,
    routed.authority,
    lctx.scheme,
    core.options.forwardedHeader,
    ctx?.headers ?? null,
  );
  const upgrade = headerString(req.headers.upgrade) ?? "websocket";
  const span = requestSpans.get(req) ?? null;
  if (span !== null) {
    setTraceContext(headers, span);
    span.upstream(cluster.id, ep.address, ep.port, 1);
  }
  routed.gen.inflight++;
  const handler = new UpgradeHandler(core, routed.gen, r, cluster, ep, socket, head, start, span);
  handler.setCookie = hash === null ? null : hash.setCookie;
  cluster.active++;
  ep.health.inflight++;
  try {
    ep.pool.dispatch(
      {
        path,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        upgrade,
        body: null,
        servername: cluster.servername,
      } satisfies UpstreamDispatchOptions as Dispatcher.DispatchOptions,
      handler,
    );
  } catch (err) {
    handler.onError(err as Error);
  }
}

class UpgradeHandler implements Dispatcher.DispatchHandler, Tunnel {
  readonly routeId: string;
  readonly generation: Generation;
  private readonly core: ProxyCore;
  private readonly route: PreparedRoute;
  private readonly cluster: ClusterRuntime;
  private readonly ep: UpstreamEndpoint;
  private readonly socket: Duplex;
  private readonly head: Buffer;
  private readonly start: number;
  private upstream: Duplex | null = null;
  /** the hash cookie the 101 sets (hash-key.ts) */
  setCookie: string | null = null;
  private settled = false;
  private status = 0;
  private closed = false;
  /** ended with the upgrade's answer (101, or the refusal relayed): the tunnel is not timed */
  private readonly span: RequestSpan | null;

  constructor(
    core: ProxyCore,
    gen: Generation,
    route: PreparedRoute,
    cluster: ClusterRuntime,
    ep: UpstreamEndpoint,
    socket: Duplex,
    head: Buffer,
    start: number,
    span: RequestSpan | null,
  ) {
    this.span = span;
    this.core = core;
    this.generation = gen;
    this.route = route;
    this.routeId = route.id;
    this.cluster = cluster;
    this.ep = ep;
    this.socket = socket;
    this.head = head;
    this.start = start;
  }

  private settle(outcome: AttemptOutcome, status: number) {
    if (this.settled) return;
    this.settled = true;
    this.status = status;
    this.cluster.active--;
    this.cluster.state.breaker.recordOutcome(outcome);
    this.cluster.report(this.ep, outcome === "ok");
    this.route.metrics.record(status, (performance.now() - this.start) / 1000);
    this.span?.end(status, this.routeId);
  }

  onConnect(): void {}

  onUpgrade(statusCode: number, raw: Buffer[] | string[] | null, upstream: Duplex): void {
    this.settle("ok", statusCode);
    const client = this.socket;
    let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
    const list = raw ?? [];
    for (let i = 0; i < list.length; i += 2)
      head += `${list[i]!.toString()}: ${list[i + 1]!.toString()}\r\n`;
    if (this.setCookie !== null) head += `set-cookie: ${this.setCookie}\r\n`;
    head += "\r\n";
    if (!client.writable) {
      upstream.destroy();
      this.end();
      return;
    }
    this.upstream = upstream;
    this.core.tunnels.add(this);
    client.write(head);
    if (this.head.length) upstream.write(this.head);
    const idle = this.core.options.tunnelIdleTimeoutMs;
    for (const s of [client, upstream]) {
      (s as Duplex & { setTimeout?(ms: number, cb: () => void): void }).setTimeout?.(idle, () =>
        this.close(),
      );
      s.on("error", () => this.destroy());
      s.on("close", () => this.destroy());
    }
    upstream.pipe(client);
    client.pipe(upstream);
  }

  /** Graceful close (config swap removed the route, idle timeout, drain): FIN both sides. */
  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.upstream?.end();
    setTimeout(() => this.destroy(), 1000).unref();
  }

  private destroy() {
    this.socket.destroy();
    this.upstream?.destroy();
    this.end();
  }

  private end() {
    if (this.closed) return;
    this.closed = true;
    this.core.tunnels.delete(this);
    this.generation.inflight--;
    // an open tunnel is a request in flight at its endpoint for least-request (as Envoy counts
    // an upgraded stream until it ends)
    this.ep.health.inflight--;
  }

  // A non-101 answer to an upgrade request: relay it and close.
  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    this.settle(statusCode < 500 ? "ok" : "error-status", statusCode);
    let head = `HTTP/1.1 ${statusCode} ${REASONS[statusCode] ?? "Response"}\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const l = raw[i]!.toString("latin1").toLowerCase();
      if (HOP_BY_HOP.has(l)) continue;
      head += `${raw[i]!.toString("latin1")}: ${raw[i + 1]!.toString("latin1")}\r\n`;
    }
    this.socket.write(`${head}connection: close\r\n\r\n`);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onComplete(): void {
    this.socket.end();
    this.end();
  }

  onError(err: Error): void {
    const c = classify(err as Error & { code?: string });
    this.core.metrics.upstreamErrors.labels(this.cluster.id, c.kind).inc();
    if (!this.settled) {
      this.settle("failed", c.status);
      const body = errorBody(c.status, c.detail);
      this.socket.end(
        `HTTP/1.1 ${c.status} ${REASONS[c.status] ?? ""}\r\ncontent-type: ${TEXT}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else this.socket.destroy();
    this.end();
  }
}
