// A route's global rate limit (rateLimit.global): the same answers as the local one
// (rate-limit.ts), from a budget every replica shares in Redis. When Redis does not answer in
// time the limit's failure mode decides: FailOpen lets the request through, FailClosed answers
// 503; both are counted (rauta_rate_limit_store_errors_total) and logged once per outage.
import type { RateLimit } from "../../config/schema.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { RedisLimitStore } from "../../upstream/global-rate-limit.ts";
import { bucketKey } from "../../upstream/rate-limit.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";
import { LimitAnswers, setAllowedHeaders } from "./rate-limit.ts";

export class GlobalRateLimitStep implements RequestStep {
  readonly name = "global-rate-limit";
  private readonly store: RedisLimitStore;
  private readonly settings: RateLimit;
  private readonly failOpen: boolean;
  private readonly metrics: Metrics;
  private readonly answers: LimitAnswers;
  private readonly prefix: string;

  constructor(store: RedisLimitStore, settings: RateLimit, routeId: string, metrics: Metrics) {
    this.store = store;
    this.settings = settings;
    this.failOpen = settings.global?.failureMode !== "FailClosed";
    this.metrics = metrics;
    this.answers = new LimitAnswers(settings);
    // a bucket per route and key; the limit's numbers are in the key too, so a changed limit
    // starts from a full bucket instead of another limit's state
    this.prefix = `rauta:rl:${routeId}:${settings.requests}/${settings.intervalMs}/${settings.burst}:`;
  }

  async run(ctx: RequestContext): Promise<StepResult> {
    const bucket = this.prefix + bucketKey(this.answers.key(ctx.req, ctx.client));
    let take;
    try {
      take = await this.store.take(bucket, this.settings);
    } catch {
      const result = this.failOpen ? "allowed" : "denied";
      this.metrics.rateLimitStoreErrors.labels(ctx.route.id, result).inc();
      if (this.failOpen) return null;
      return {
        status: 503,
        detail: "rate limit store unavailable",
        headers: [["retry-after", "1"]],
      };
    }
    if (take.left >= 0) {
      setAllowedHeaders(ctx, this.answers.allowed(take.left));
      return null;
    }
    this.metrics.rateLimited.labels(ctx.route.id).inc();
    return this.answers.limited(Math.max(1, Math.ceil(take.retryAfterMs / 1000)));
  }
}
