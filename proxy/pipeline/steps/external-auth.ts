// The Gateway API ExternalAuth filter (GEP-1494), HTTP protocol: the request goes to the auth
// service first — same method, the filter's path prefix before its path, Host, Authorization,
// the allowed headers and the X-Forwarded-* an auth proxy (oauth2-proxy, Authelia, OPA behind a
// shim) needs to rebuild the original URL; the body too with forwardBody (read ahead up to
// maxSize, a longer one answered 413 as the spec asks; the backend then gets the same bytes,
// replayed). A 2xx lets the request through with the
// answer's allowed headers set on it (who the user is, for the backend); any other answer goes
// back to the client as it came (a 401 with WWW-Authenticate, a 302 to a sign-in page). No
// answer, or none in time: 403, failing closed as the spec requires.
import type { Dispatcher } from "undici";
import type { Filter } from "../../config/schema.ts";
import { HOP_BY_HOP } from "../../filters/headers.ts";
import { expandSignIn } from "../../filters/sign-in.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { ClusterRuntime } from "../../upstream/cluster.ts";
import type { LocalReply, RequestContext } from "../context.ts";
import { BodyReadError } from "../request-body.ts";
import { BODY_READ_TIMEOUT_MS } from "./plugin.ts";
import type { RequestStep, StepResult } from "../step.ts";

type ExternalAuthFilter = Extract<Filter, { type: "ExternalAuth" }>;

/** the most of an auth service's answer body passed on to the client */
const MAX_DENIAL_BODY = 64 * 1024;
/** never copied from an allowing answer onto the request, even when listed */
const NOT_COPIED = new Set(["host", ":authority", "content-length", "content-type"]);

/** The path and query the auth service is asked about. */
const requestUri = (ctx: RequestContext) => (ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path);

interface AuthAnswer {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
}

export class ExternalAuthStep implements RequestStep {
  readonly name: string;
  private readonly filter: ExternalAuthFilter;
  private readonly cluster: ClusterRuntime | undefined;
  private readonly metrics: Metrics;
  private readonly allowed: ReadonlySet<string>;
  private readonly copied: ReadonlySet<string> | null;
  private readonly prefix: string;
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
    this.cluster = cluster;
    this.metrics = metrics;
    this.allowed = new Set(filter.allowedHeaders);
    this.copied = filter.allowedResponseHeaders.length
      ? new Set(filter.allowedResponseHeaders)
      : null;
    this.prefix = filter.pathPrefix.replace(/\/+$/, "");
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
    let answer: AuthAnswer;
    try {
      answer = await this.ask(ctx, body);
    } catch (err) {
      this.metrics.externalAuth.labels(route, "error").inc();
      return {
        status: 403,
        detail: `external auth service ${this.filter.clusterId} did not answer (${(err as Error).message}); denied, as ExternalAuth fails closed`,
      };
    }
    if (answer.status >= 200 && answer.status < 300) {
      this.metrics.externalAuth.labels(route, "allowed").inc();
      for (const [name, value] of answer.headers) {
        if (NOT_COPIED.has(name) || (this.copied !== null && !this.copied.has(name))) continue;
        ctx.setHeader(name, value);
      }
      return null;
    }
    this.metrics.externalAuth.labels(route, "denied").inc();
    if (answer.status === 401 && this.signIn !== undefined) {
      const location = expandSignIn(this.signIn, {
        scheme: ctx.lctx.scheme,
        host: ctx.authority,
        requestUri: ctx.req.url ?? requestUri(ctx),
      });
      // the auth service's cookies (a CSRF token of oauth2-proxy's) go along
      const cookies = answer.headers.filter(([n]) => n === "set-cookie");
      return {
        status: 302,
        detail: "sign in first",
        headers: [["location", location], ["cache-control", "no-store"], ...cookies],
      };
    }
    const reply: LocalReply = {
      status: answer.status,
      headers: answer.headers.filter(([n]) => n !== "content-length"),
      body: answer.body,
    };
    return reply;
  }

  private ask(ctx: RequestContext, body: Buffer | null): Promise<AuthAnswer> {
    const c = this.cluster;
    const ep = c?.pick(null) ?? null;
    if (!c || ep === null) return Promise.reject(new Error("no healthy endpoint"));
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
    return new Promise<AuthAnswer>((resolve, reject) => {
      let status = 0;
      let raw: Buffer[] = [];
      const chunks: Buffer[] = [];
      let size = 0;
      let abort: ((err?: Error) => void) | null = null;
      let settled = false;
      const done = (err: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err !== null) return reject(err);
        const out: Array<[string, string]> = [];
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i]!.toString("latin1").toLowerCase();
          if (!HOP_BY_HOP.has(name)) out.push([name, raw[i + 1]!.toString("latin1")]);
        }
        resolve({ status, headers: out, body: Buffer.concat(chunks) });
      };
      const timer = setTimeout(() => {
        done(new Error(`no answer within ${this.filter.timeoutMs} ms`));
        abort?.(new Error("timed out"));
      }, this.filter.timeoutMs);
      const handler: Dispatcher.DispatchHandler = {
        onConnect: a => {
          abort = a;
        },
        onHeaders: (code, rawHeaders) => {
          if (code < 200) return true;
          status = code;
          raw = rawHeaders as Buffer[];
          return true;
        },
        onData: chunk => {
          if (size < MAX_DENIAL_BODY) chunks.push(chunk.subarray(0, MAX_DENIAL_BODY - size));
          size += chunk.length;
          return true;
        },
        onComplete: () => done(null),
        onError: err => done(err),
      };
      try {
        ep.pool.dispatch(
          {
            path: `${this.prefix}${uri}`,
            method: (req.method ?? "GET") as Dispatcher.HttpMethod,
            headers,
            body,
            servername: c.servername,
          } as Dispatcher.DispatchOptions,
          handler,
        );
      } catch (err) {
        done(err as Error);
      }
    });
  }
}
