// The Gateway API CORS filter: a preflight is answered by the gateway (204), an actual request
// from an allowed origin gets the allow headers on its response. Runs first in the chain so a
// preflight never needs credentials (browsers send none).
import type { Filter } from "../../config/schema.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

type CorsFilter = Extract<Filter, { type: "CORS" }>;

export class CorsStep implements RequestStep {
  readonly name = "cors";
  private readonly allowAll: boolean;
  private readonly origins: Set<string>;
  private readonly wildcards: RegExp[];
  private readonly allowMethods: string;
  private readonly allowHeaders: string;
  private readonly exposeHeaders: string;
  private readonly credentials: boolean;
  private readonly maxAge: string;

  constructor(f: CorsFilter) {
    this.origins = new Set();
    this.wildcards = [];
    let all = false;
    for (const o of f.allowOrigins) {
      if (o === "*") all = true;
      else if (o.includes("*")) {
        const src = o
          .split("*")
          .map(s => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"))
          .join("[^/]*");
        this.wildcards.push(new RegExp(`^${src}$`));
      } else this.origins.add(o);
    }
    this.allowAll = all;
    this.allowMethods = f.allowMethods.join(", ");
    this.allowHeaders = f.allowHeaders.join(", ");
    this.exposeHeaders = f.exposeHeaders.join(", ");
    this.credentials = f.allowCredentials;
    this.maxAge = String(f.maxAgeSeconds);
  }

  private allowed(origin: string): boolean {
    if (this.allowAll || this.origins.has(origin)) return true;
    for (const re of this.wildcards) if (re.test(origin)) return true;
    return false;
  }

  run(ctx: RequestContext): StepResult {
    const o = ctx.req.headers.origin;
    const origin = typeof o === "string" ? o : undefined;
    if (origin === undefined) return null;
    const allowed = this.allowed(origin);
    const allowOrigin = this.allowAll && !this.credentials ? "*" : origin;
    if (
      ctx.req.method === "OPTIONS" &&
      ctx.req.headers["access-control-request-method"] !== undefined
    ) {
      const headers: Array<[string, string]> = [];
      if (allowed) {
        headers.push(["access-control-allow-origin", allowOrigin]);
        // Fetch §3.2.3: with credentials a browser takes "*" literally (a method or header
        // named "*"): a wildcard answers with what the preflight asks for instead
        const methods =
          this.allowMethods === "*" && this.credentials
            ? headerString(ctx.req.headers["access-control-request-method"])
            : this.allowMethods;
        const requested = headerString(ctx.req.headers["access-control-request-headers"]);
        const allowHeaders =
          this.allowHeaders === "*" && this.credentials ? requested : this.allowHeaders;
        if (methods) headers.push(["access-control-allow-methods", methods]);
        if (allowHeaders) headers.push(["access-control-allow-headers", allowHeaders]);
        if (this.credentials) headers.push(["access-control-allow-credentials", "true"]);
        // the Gateway API filter sends its exposeHeaders on the preflight's answer too
        if (this.exposeHeaders) headers.push(["access-control-expose-headers", this.exposeHeaders]);
        headers.push(["access-control-max-age", this.maxAge], ["vary", "Origin"]);
      }
      return { status: 204, headers, body: EMPTY };
    }
    if (!allowed) return null;
    ctx.editResponse(["set", "access-control-allow-origin", allowOrigin]);
    ctx.editResponse(["add", "vary", "Origin"]);
    if (this.credentials) ctx.editResponse(["set", "access-control-allow-credentials", "true"]);
    if (this.exposeHeaders)
      ctx.editResponse(["set", "access-control-expose-headers", this.exposeHeaders]);
    return null;
  }
}

const EMPTY = new Uint8Array(0);

const headerString = (v: string | string[] | undefined): string =>
  v === undefined ? "" : Array.isArray(v) ? v.join(", ") : v;
