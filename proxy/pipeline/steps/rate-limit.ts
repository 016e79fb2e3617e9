// A route's local rate limit (its BackendTrafficPolicy's rateLimit): 429 with Retry-After and
// the RateLimit headers (X-RateLimit-* as Envoy and Kong send them, and the IETF draft's
// RateLimit-Policy / RateLimit) once the client's bucket is empty; allowed responses carry the
// limit and what is left.
import type { Metrics } from "../../observability/metrics.ts";
import type { TokenBucketLimiter } from "../../upstream/rate-limit.ts";
import type { RequestContext } from "../context.ts";
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
    const name = this.limiter.keyHeader;
    let key = this.limiter.perRoute ? "" : ctx.client;
    if (name !== null) {
      const v = ctx.req.headers[name];
      key = v === undefined ? "" : typeof v === "string" ? v : v.join(", ");
    }
    const left = this.limiter.take(key);
    if (left >= 0) {
      (ctx.responseEdits ??= []).push(
        ["set", "x-ratelimit-limit", this.limit],
        ["set", "x-ratelimit-remaining", String(left)],
      );
      return null;
    }
    this.metrics.rateLimited.labels(ctx.route.id).inc();
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
