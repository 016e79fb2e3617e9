// Local token-bucket rate limiting: `rate` tokens per second, bursts up to `burst`, one bucket
// per key (client address by default). Buckets refill lazily on use; idle buckets are swept.
export interface RateLimitOptions {
  rate: number;
  burst: number;
  /** Keep at most this many buckets (oldest swept first). */
  maxKeys?: number;
  /** What a bucket is per: the client address (default) or the value of a request header. */
  key?: "client" | { header: string };
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  readonly rate: number;
  readonly burst: number;
  /** lowercased header name whose value is the key, or null for the client address */
  readonly keyHeader: string | null;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions, now: () => number = Date.now) {
    this.rate = options.rate;
    this.burst = options.burst;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.keyHeader = typeof options.key === "object" ? options.key.header.toLowerCase() : null;
    this.now = now;
  }

  /** Takes one token for key; false when the bucket is empty. */
  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
