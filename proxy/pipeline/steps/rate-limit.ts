// A route's local rate limit (its BackendTrafficPolicy's rateLimit): 429 with Retry-After and
// the RateLimit headers (X-RateLimit-* as Envoy and Kong send them, and the IETF draft's
// RateLimit-Policy / RateLimit) once the client's bucket is empty; allowed responses carry the
// limit and what is left. The global limit (global-rate-limit.ts) answers the same way.
import type { RateLimit } from "../../config/schema.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { TokenBucketLimiter } from "../../upstream/rate-limit.ts";
import type { DownstreamRequest, LocalReply, RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

/** What a limit's buckets are keyed by, and the headers its answers carry. */
export class LimitAnswers {
  /** lowercased header whose value is the key; null: the client address or the whole route */
  private readonly keyHeader: string | null;
  private readonly perRoute: boolean;
  private readonly limit: string;
  private readonly policy: string;

  constructor(settings: RateLimit) {
    this.keyHeader = settings.key.type === "Header" ? settings.key.name.toLowerCase() : null;
    this.perRoute = settings.key.type === "Route";
    this.limit = String(settings.requests);
    const w = Math.max(1, Math.round(settings.intervalMs / 1000));
    this.policy = `"default";q=${settings.requests};w=${w}`;
  }

  key(req: DownstreamRequest, client: string): string {
    if (this.keyHeader === null) return this.perRoute ? "" : client;
    const v = req.headers[this.keyHeader];
    return v === undefined ? "" : typeof v === "string" ? v : v.join(", ");
  }

  /** the headers an allowed response carries ("name", "value", …) */
  allowed(left: number): string[] {
    return ["x-ratelimit-limit", this.limit, "x-ratelimit-remaining", String(left)];
  }

  limited(retryAfterSeconds: number): LocalReply {
    const wait = String(retryAfterSeconds);
    return {
      status: 429,
      detail: "rate limit exceeded",
      headers: [
        ["retry-after", wait],
        ["x-ratelimit-limit", this.limit],
        ["x-ratelimit-remaining", "0"],
        ["x-ratelimit-reset", wait],
        ["ratelimit-policy", this.policy],
        ["ratelimit", `"default";r=0;t=${wait}`],
      ],
    };
  }
}

/** Sets an allowed request's rate limit headers on its response. */
export function setAllowedHeaders(ctx: RequestContext, headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2)
    ctx.editResponse(["set", headers[i]!, headers[i + 1]!]);
}

export class RateLimitStep implements RequestStep {
  readonly name = "rate-limit";
  private readonly limiter: TokenBucketLimiter;
  private readonly metrics: Metrics;
  private readonly answers: LimitAnswers;

  constructor(limiter: TokenBucketLimiter, metrics: Metrics) {
    this.limiter = limiter;
    this.metrics = metrics;
    this.answers = new LimitAnswers(limiter.settings);
  }

  run(ctx: RequestContext): StepResult {
    const verdict = this.admit(ctx.req, ctx.client, ctx.route.id);
    if (!Array.isArray(verdict)) return verdict;
    setAllowedHeaders(ctx, verdict);
    return null;
  }

  /**
   * The verdict without a request context (a route with no other steps never makes one): the
   * 429, or the headers ("name", "value", …) the allowed response carries.
   */
  admit(req: DownstreamRequest, client: string, routeId: string): LocalReply | string[] {
    const key = this.answers.key(req, client);
    const left = this.limiter.take(key);
    if (left >= 0) return this.answers.allowed(left);
    this.metrics.rateLimited.labels(routeId).inc();
    return this.answers.limited(this.limiter.retryAfterSeconds(key));
  }
}
