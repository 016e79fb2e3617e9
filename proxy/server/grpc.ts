// gRPC at the edge of the proxy: which requests are gRPC calls, how the gateway's own answers to
// them look (a trailers-only response with grpc-status and grpc-message, which every gRPC client
// turns into a status, instead of an HTTP error page it can only call UNKNOWN), and the client's
// deadline (grpc-timeout). Proxied gRPC responses pass through untouched.
import type { Http2ServerResponse, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import type { ServerResponse } from "node:http";

// application/grpc, application/grpc+proto, application/grpc-web(-text)…
const GRPC_CONTENT_TYPE = /^application\/grpc(?:-web(?:-text)?)?(?:[+;]|$)/i;

export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  return type !== undefined && GRPC_CONTENT_TYPE.test(type);
}

/** gRPC status codes (grpc/doc/statuscodes.md) the gateway answers with. */
export const GrpcStatus = {
  OK: 0,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The gRPC status for a local answer with this HTTP status: grpc/doc/http-grpc-status-mapping.md,
 * except where the gateway knows more than a client reading an HTTP status would: its 504 and
 * 408 are deadlines, its 429 and 413/431 are limits (RESOURCE_EXHAUSTED, which clients do not
 * retry blindly as they do UNAVAILABLE), 500 is its own INTERNAL.
 */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 500:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
    case 501:
      return GrpcStatus.UNIMPLEMENTED;
    case 408:
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 413:
    case 429:
    case 431:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return httpStatus < 400 ? GrpcStatus.OK : GrpcStatus.UNKNOWN;
  }
}

// grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md): printable ASCII but "%" as is
function encodeMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Headers of a trailers-only gRPC answer for a local HTTP status (plus the reply's own). */
export function grpcReplyHeaders(
  httpStatus: number,
  message: string,
  extra: Iterable<[string, string]> = [],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of extra) {
    const l = k.toLowerCase();
    if (l === "content-length" || l === "content-type") continue;
    headers[l] = v;
  }
  headers["content-type"] = "application/grpc";
  headers["grpc-status"] = String(grpcStatusFor(httpStatus));
  headers["grpc-message"] = encodeMessage(message.trim());
  return headers;
}

/**
 * Sends a trailers-only response: HTTP 200 and one HEADERS frame that ends the stream. Node's
 * compatibility writeHead + end sends an empty DATA frame after the headers instead, which
 * leaves grpc-status in initial metadata, where clients do not look for it.
 */
export function sendGrpcReply(
  res: Http2ServerResponse | ServerResponse,
  headers: OutgoingHttpHeaders,
): void {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse["stream"] | undefined;
  if (stream !== undefined) {
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ...headers, ":status": 200 }, { endStream: true });
    return;
  }
  // gRPC-Web over HTTP/1.1: its trailers-only form is the same headers and an empty body
  (res as ServerResponse).writeHead(200, { ...headers, "content-length": 0 });
  res.end();
}

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The client's deadline in milliseconds from its grpc-timeout header ("100m", "5S"); null
 * without one or when it is malformed (PROTOCOL-HTTP2.md: at most 8 digits and a unit). */
export function grpcTimeoutMs(header: string | string[] | undefined): number | null {
  if (typeof header !== "string") return null;
  const m = /^(\d{1,8})([HMSmun])$/.exec(header);
  if (m === null) return null;
  return Math.max(1, Math.ceil(Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!));
}
