// The Gateway API ExternalAuth filter (GEP-1494): every request is first put to an auth service;
// an allowing answer lets it through with what the service adds (who the user is, for the
// backend), any other answer goes back to the client (a 401 with WWW-Authenticate, or the 302 of
// a SecurityPolicy's signIn). No answer, or none in time: 403, failing closed as the spec
// requires. forwardBody reads the body ahead up to maxSize (a longer one is answered 413, as the
// spec asks; the backend then gets the same bytes, replayed). How the service is asked is the
// transport's: HTTP here (ingress-nginx's auth-url, oauth2-proxy, Authelia), gRPC in
// external-auth-grpc.ts (Envoy's ext_authz: OPA-Envoy, Authorino).
import { expandSignIn } from "../../filters/sign-in.ts";
import type { Metrics } from "../../observability/metrics.ts";
import { callCluster } from "../../upstream/call.ts";
import type { ClusterRuntime } from "../../upstream/cluster.ts";
import type { LocalReply, RequestContext } from "../context.ts";
import { BodyReadError } from "../request-body.ts";
import { BODY_READ_TIMEOUT_MS } from "./plugin.ts";
import type { RequestStep, StepResult } from "../step.ts";
import { GrpcAuthTransport } from "./external-auth-grpc.ts";
import { MAX_DENIAL_BODY, requestUri } from "../auth-verdict.ts";
import type { AuthTransport, AuthVerdict, ExternalAuthFilter } from "../auth-verdict.ts";

/** never copied from an allowing answer onto the request, even when listed */
const NOT_COPIED = new Set(["host", ":authority", "content-length", "content-type"]);

/** HTTP: the request's method and path (after the filter's prefix), its Authorization and allowed headers. */
class HttpAuthTransport implements AuthTransport {
  private readonly filter: ExternalAuthFilter;
  private readonly cluster: ClusterRuntime | undefined;
  private readonly allowed: ReadonlySet<string>;
  private readonly copied: ReadonlySet<string> | null;
  private readonly prefix: string;

  constructor(filter: ExternalAuthFilter, cluster: ClusterRuntime | undefined) {
    this.filter = filter;
    this.cluster = cluster;
    this.allowed = new Set(filter.allowedHeaders);
    this.copied = filter.allowedResponseHeaders.length
      ? new Set(filter.allowedResponseHeaders)
      : null;
    this.prefix = filter.pathPrefix.replace(/\/+$/, "");
  }

  async ask(ctx: RequestContext, body: Buffer | null): Promise<AuthVerdict> {
    const req = ctx.req;
    const uri = requestUri(ctx);
    // Content-Length is the forwarded body's (undici sets it); without forwardBody, 0 as the
    // spec says, for methods with a body
    const headers: string[] = ["host", ctx.authority];
    for (const [name, value] of ctx.requestHeaders())
      if (name === "authorization" || this.allowed.has(name)) headers.push(name, value);
    if (
      body !== null &&
      !this.allowed.has("content-type") &&
      ctx.req.headers["content-type"] !== undefined
    )
      headers.push("content-type", String(ctx.req.headers["content-type"]));
    // what an auth proxy (oauth2-proxy, Authelia) needs to rebuild the original URL
    headers.push(
      "x-forwarded-for",
      ctx.client,
      "x-forwarded-proto",
      ctx.lctx.scheme,
      "x-forwarded-host",
      ctx.authority,
      "x-forwarded-uri",
      uri,
      "x-forwarded-method",
      req.method ?? "GET",
    );
    const answer = await callCluster(this.cluster, {
      method: req.method ?? "GET",
      path: `${this.prefix}${uri}`,
      headers,
      body,
      timeoutMs: this.filter.timeoutMs,
      maxBody: MAX_DENIAL_BODY,
    });
    if (answer.status >= 200 && answer.status < 300)
      return {
        allowed: true,
        apply: c => {
          for (const [name, value] of answer.headers) {
            if (NOT_COPIED.has(name) || (this.copied !== null && !this.copied.has(name))) continue;
            c.setHeader(name, value);
          }
        },
      };
    return {
      allowed: false,
      status: answer.status,
      headers: answer.headers.filter(([n]) => n !== "content-length"),
      body: answer.body,
    };
  }
}

export class ExternalAuthStep implements RequestStep {
  readonly name: string;
  private readonly filter: ExternalAuthFilter;
  private readonly transport: AuthTransport;
  private readonly metrics: Metrics;
  /** a SecurityPolicy's signIn: where a 401 sends the client instead */
  private readonly signIn: string | undefined;

  constructor(
    filter: ExternalAuthFilter,
    cluster: ClusterRuntime | undefined,
    metrics: Metrics,
    signIn?: string,
  ) {
    this.signIn = signIn;
    this.name = `external-auth ${filter.clusterId}`;
    this.filter = filter;
    this.metrics = metrics;
    this.transport =
      filter.protocol === "GRPC"
        ? new GrpcAuthTransport(filter, cluster)
        : new HttpAuthTransport(filter, cluster);
  }

  /** The body to forward (null: none), or the reply when it cannot be. */
  private async body(ctx: RequestContext): Promise<Buffer | null | LocalReply> {
    const max = this.filter.forwardBodyBytes;
    if (max === undefined) return null;
    try {
      const view = await ctx
        .requestBody()
        .upTo(
          max,
          ctx.route.requestTimeoutMs > 0 ? ctx.route.requestTimeoutMs : BODY_READ_TIMEOUT_MS,
        );
      if (view.truncated)
        return {
          status: 413,
          detail: `request body longer than the ${max} bytes the external auth service may see (forwardBody.maxSize)`,
        };
      return Buffer.from(view.bytes.buffer, view.bytes.byteOffset, view.bytes.byteLength);
    } catch (err) {
      if (err instanceof BodyReadError) return { status: err.status, detail: err.message };
      throw err;
    }
  }

  async run(ctx: RequestContext): Promise<StepResult> {
    const route = ctx.route.id;
    const body = await this.body(ctx);
    if (body !== null && !Buffer.isBuffer(body)) return body;
    let verdict: AuthVerdict;
    try {
      verdict = await this.transport.ask(ctx, body);
    } catch (err) {
      this.metrics.externalAuth.labels(route, "error").inc();
      return {
        status: 403,
        detail: `external auth service ${this.filter.clusterId} did not answer (${(err as Error).message}); denied, as ExternalAuth fails closed`,
      };
    }
    if (verdict.allowed) {
      this.metrics.externalAuth.labels(route, "allowed").inc();
      verdict.apply(ctx);
      return null;
    }
    this.metrics.externalAuth.labels(route, "denied").inc();
    if (verdict.status === 401 && this.signIn !== undefined) {
      const location = expandSignIn(this.signIn, {
        scheme: ctx.lctx.scheme,
        host: ctx.authority,
        requestUri: ctx.req.url ?? requestUri(ctx),
      });
      // the auth service's cookies (a CSRF token of oauth2-proxy's) go along
      const cookies = verdict.headers.filter(([n]) => n === "set-cookie");
      return {
        status: 302,
        detail: "sign in first",
        headers: [["location", location], ["cache-control", "no-store"], ...cookies],
      };
    }
    return { status: verdict.status, headers: verdict.headers, body: verdict.body };
  }
}
