// The proxy's local token-bucket limit of a route (set by proxy options until policies own it):
// 429 with Retry-After once the client's bucket is empty.
import type { Metrics } from "../../observability/metrics.ts";
import type { TokenBucketLimiter } from "../../upstream/rate-limit.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

export class RateLimitStep implements RequestStep {
  readonly name = "rate-limit";
  private readonly limiter: TokenBucketLimiter;
  private readonly metrics: Metrics;

  constructor(limiter: TokenBucketLimiter, metrics: Metrics) {
    this.limiter = limiter;
    this.metrics = metrics;
  }

  run(ctx: RequestContext): StepResult {
    const name = this.limiter.keyHeader;
    let key = ctx.client;
    if (name !== null) {
      const v = ctx.req.headers[name];
      key = v === undefined ? "" : typeof v === "string" ? v : v.join(", ");
    }
    if (this.limiter.take(key)) return null;
    this.metrics.rateLimited.labels(ctx.route.id).inc();
    return { status: 429, detail: "rate limit exceeded", headers: [["retry-after", "1"]] };
  }
}
