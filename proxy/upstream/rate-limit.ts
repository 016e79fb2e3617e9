// Local token-bucket rate limiting (a route's rateLimit): one bucket per key holding up to
// `burst` tokens, refilled with `requests` tokens every `intervalMs`. Buckets refill lazily on
// use; past maxKeys the least recently created one goes.
import type { RateLimit } from "../config/schema.ts";
import { hash32 } from "./maglev.ts";

// a key longer than this (a header value may be kilobytes) is kept as its hash: maxKeys buckets
// must not hold maxKeys copies of a huge header
const MAX_KEY_LENGTH = 128;

export function bucketKey(key: string): string {
  return key.length <= MAX_KEY_LENGTH
    ? key
    : `#${key.length}:${hash32(key)}:${hash32(key, 0x2545f491)}`;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  readonly settings: RateLimit;
  /** tokens per millisecond */
  private readonly rate: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(settings: RateLimit, now: () => number = Date.now, maxKeys = 100_000) {
    this.settings = settings;
    this.rate = settings.requests / settings.intervalMs;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  /** Takes one token for key: the whole tokens left (≥ 0), or -1 when the bucket is empty. */
  take(key: string): number {
    key = bucketKey(key);
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      b = { tokens: this.settings.burst, at: t };
      this.buckets.set(key, b);
    } else if (t > b.at) {
      // (a clock that stepped back refills nothing until it is past b.at again)
      b.tokens = Math.min(this.settings.burst, b.tokens + (t - b.at) * this.rate);
      b.at = t;
    }
    if (b.tokens < 1) return -1;
    b.tokens -= 1;
    return Math.floor(b.tokens);
  }

  /** Whole seconds (at least 1) until key's bucket holds a token again. */
  retryAfterSeconds(key: string): number {
    const b = this.buckets.get(bucketKey(key));
    const missing = b === undefined ? 0 : 1 - b.tokens;
    return Math.max(1, Math.ceil(missing / this.rate / 1000));
  }
}
