// ExternalAuth protocol GRPC: the request described in a CheckRequest to
// envoy.service.auth.v3.Authorization/Check (OPA-Envoy, Authorino, any ext_authz server), over
// the cluster's HTTP/2 pool. Every request header goes along unless the filter lists
// allowedHeaders (then only those), as GEP-1494 says for gRPC, with the pseudo-headers Envoy
// sends (:authority, :method, :path, :scheme). An OK lets the request through with the answer's
// header, query and response-header changes; a denial answers with its status (403 when it
// names none), headers and body; a gRPC error or a message that does not parse is no answer
// (the step fails closed).
import { decodeCheckResponse, encodeCheckRequest } from "../../filters/ext-authz-proto.ts";
import type { HeaderOption } from "../../filters/ext-authz-proto.ts";
import { callCluster } from "../../upstream/call.ts";
import type { ClusterRuntime } from "../../upstream/cluster.ts";
import type { AuthTransport, AuthVerdict, ExternalAuthFilter } from "../auth-verdict.ts";
import { MAX_DENIAL_BODY, requestUri } from "../auth-verdict.ts";
import type { RequestContext } from "../context.ts";

const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";
/** a CheckResponse bigger than this is not an answer */
const MAX_RESPONSE = MAX_DENIAL_BODY + 64 * 1024;
/** never changed on the request by an answer: routing already used them */
const PROTECTED = new Set(["host", ":authority", ":method", ":path", ":scheme", "content-length"]);

function applyHeader(ctx: RequestContext, o: HeaderOption): void {
  if (PROTECTED.has(o.name)) return;
  const present = ctx.header(o.name) !== undefined;
  if (o.action === "set" || (o.action === "set-if-present" && present))
    ctx.setHeader(o.name, o.value);
  else if (o.action === "add" || (o.action === "add-if-absent" && !present)) {
    ctx.mutableHeaders().push([o.name, o.value]);
    ctx.version++;
  }
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The one message of a unary gRPC answer. */
function unframe(body: Buffer): Uint8Array {
  if (body.length < 5) throw new Error("the auth service sent no CheckResponse");
  if (body[0] !== 0) throw new Error("the auth service compressed its answer (none was offered)");
  const n = body.readUInt32BE(1);
  if (body.length < 5 + n) throw new Error("the CheckResponse is cut off");
  return body.subarray(5, 5 + n);
}

export class GrpcAuthTransport implements AuthTransport {
  private readonly filter: ExternalAuthFilter;
  private readonly cluster: ClusterRuntime | undefined;
  /** null: every header */
  private readonly allowed: ReadonlySet<string> | null;
  private readonly authority: string;

  constructor(filter: ExternalAuthFilter, cluster: ClusterRuntime | undefined) {
    this.filter = filter;
    this.cluster = cluster;
    this.allowed = filter.allowedHeaders.length > 0 ? new Set(filter.allowedHeaders) : null;
    const s = cluster?.config.service;
    this.authority = s ? `${s.name}.${s.namespace}:${s.port}` : "ext-authz";
  }

  private headers(ctx: RequestContext, path: string): Array<[string, string]> {
    const joined = new Map<string, string>();
    if (this.allowed === null) {
      joined.set(":authority", ctx.authority);
      joined.set(":method", ctx.req.method ?? "GET");
      joined.set(":path", path);
      joined.set(":scheme", ctx.lctx.scheme);
    }
    for (const [name, value] of ctx.requestHeaders()) {
      if (this.allowed !== null && !this.allowed.has(name)) continue;
      const prev = joined.get(name);
      joined.set(name, prev === undefined ? value : `${prev},${value}`);
    }
    return [...joined];
  }

  async ask(ctx: RequestContext, body: Buffer | null): Promise<AuthVerdict> {
    const path = requestUri(ctx);
    const socket = ctx.req.socket;
    const request = encodeCheckRequest({
      source: { address: ctx.client, port: socket?.remotePort ?? 0 },
      destination: { address: socket?.localAddress ?? "", port: ctx.lctx.port },
      timeMs: Date.now(),
      http: {
        id: String(ctx.req.headers["x-request-id"] ?? ""),
        method: ctx.req.method ?? "GET",
        headers: this.headers(ctx, path),
        path,
        host: ctx.authority,
        scheme: ctx.lctx.scheme,
        protocol: `HTTP/${ctx.req.httpVersion}`,
        ...(body !== null ? { body } : {}),
      },
    });
    const answer = await callCluster(this.cluster, {
      method: "POST",
      path: CHECK_PATH,
      headers: [
        "host",
        this.authority,
        "content-type",
        "application/grpc",
        "grpc-timeout",
        `${this.filter.timeoutMs}m`,
      ],
      body: frame(request),
      timeoutMs: this.filter.timeoutMs,
      maxBody: MAX_RESPONSE,
    });
    // grpc-status in the trailers, or in the headers of a trailers-only answer
    const meta = [...answer.trailers, ...answer.headers];
    const grpcStatus = meta.find(([n]) => n === "grpc-status")?.[1];
    if (answer.status !== 200) throw new Error(`the auth service answered HTTP ${answer.status}`);
    if (grpcStatus !== "0") {
      const message = meta.find(([n]) => n === "grpc-message")?.[1];
      throw new Error(
        `the auth service answered gRPC status ${grpcStatus ?? "(none)"}${message ? `: ${decodeURIComponent(message)}` : ""}`,
      );
    }
    if (answer.truncated) throw new Error(`the CheckResponse is over ${MAX_RESPONSE} bytes`);
    const verdict = decodeCheckResponse(unframe(answer.body));
    if (!verdict.allowed)
      return {
        allowed: false,
        status: verdict.httpStatus >= 200 && verdict.httpStatus <= 599 ? verdict.httpStatus : 403,
        headers: verdict.headers.map(h => [h.name, h.value]),
        body: Buffer.from(verdict.body || verdict.message),
      };
    return {
      allowed: true,
      apply: c => {
        for (const name of verdict.headersToRemove)
          if (!PROTECTED.has(name)) c.setHeader(name, null);
        for (const h of verdict.headers) applyHeader(c, h);
        for (const h of verdict.responseHeadersToAdd)
          c.editResponse([h.action === "add" ? "add" : "set", h.name, h.value]);
        if (verdict.queryToSet.length > 0 || verdict.queryToRemove.length > 0)
          c.editQuery(params => {
            for (const name of verdict.queryToRemove) params.delete(name);
            for (const [name, value] of verdict.queryToSet) params.set(name, value);
          });
      },
    };
  }
}
