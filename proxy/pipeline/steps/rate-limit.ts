// A route's local rate limit (its BackendTrafficPolicy's rateLimit): 429 with Retry-After and
// the RateLimit headers (X-RateLimit-* as Envoy and Kong send them, and the IETF draft's
// RateLimit-Policy / RateLimit) once the client's bucket is empty; allowed responses carry the
// limit and what is left.
import type { Metrics } from "../../observability/metrics.ts";
import type { TokenBucketLimiter } from "../../upstream/rate-limit.ts";
import type { DownstreamRequest, LocalReply, RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

export class RateLimitStep implements RequestStep {
  readonly name = "rate-limit";
  private readonly limiter: TokenBucketLimiter;
  private readonly metrics: Metrics;
  private readonly limit: string;
  private readonly policy: string;

  constructor(limiter: TokenBucketLimiter, metrics: Metrics) {
    this.limiter = limiter;
    this.metrics = metrics;
    const { requests, intervalMs } = limiter.settings;
    this.limit = String(requests);
    this.policy = `"default";q=${requests};w=${Math.max(1, Math.round(intervalMs / 1000))}`;
  }

  run(ctx: RequestContext): StepResult {
    const verdict = this.admit(ctx.req, ctx.client, ctx.route.id);
    if (!Array.isArray(verdict)) return verdict;
    for (let i = 0; i < verdict.length; i += 2)
      ctx.editResponse(["set", verdict[i]!, verdict[i + 1]!]);
    return null;
  }

  /**
   * The verdict without a request context (a route with no other steps never makes one): the
   * 429, or the headers ("name", "value", …) the allowed response carries.
   */
  admit(req: DownstreamRequest, client: string, routeId: string): LocalReply | string[] {
    const name = this.limiter.keyHeader;
    let key = this.limiter.perRoute ? "" : client;
    if (name !== null) {
      const v = req.headers[name];
      key = v === undefined ? "" : typeof v === "string" ? v : v.join(", ");
    }
    const left = this.limiter.take(key);
    if (left >= 0) return ["x-ratelimit-limit", this.limit, "x-ratelimit-remaining", String(left)];
    this.metrics.rateLimited.labels(routeId).inc();
    const wait = String(this.limiter.retryAfterSeconds(key));
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
