// Per-cluster circuit breaker: closed → open when, over the rolling window, at least
// minRequests finished and the error ratio is ≥ errorRatio; open → half-open after openMs;
// half-open lets `halfOpenProbes` requests through: all succeed → closed, any fails → open.
export interface CircuitBreakerOptions {
  windowMs: number;
  minRequests: number;
  errorRatio: number;
  openMs: number;
  halfOpenProbes: number;
  /**
   * Whether the backend's own 5xx responses count as errors. Off by default: an application
   * answering 500 or 503 is still reachable, and cutting its whole Service off for openMs (as
   * no other gateway does unless told to) turns its errors into ours. Connect failures, resets
   * and timeouts always count.
   */
  errorStatuses: boolean;
}

/** How one try at an endpoint ended, for the breaker and outlier detection. */
export type AttemptOutcome = "ok" | "error-status" | "failed";

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = {
  windowMs: 10_000,
  minRequests: 20,
  errorRatio: 0.5,
  openMs: 30_000,
  halfOpenProbes: 1,
  errorStatuses: false,
};

export type CircuitState = "closed" | "open" | "half-open";
const BUCKETS = 10;

export class CircuitBreaker {
  readonly options: CircuitBreakerOptions;
  state: CircuitState = "closed";
  private openedAt = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  private readonly ok = new Uint32Array(BUCKETS);
  private readonly err = new Uint32Array(BUCKETS);
  private bucketStart = 0;
  private bucket = 0;
  private readonly now: () => number;
  onStateChange: ((s: CircuitState) => void) | null = null;

  constructor(options: Partial<CircuitBreakerOptions> = {}, now: () => number = Date.now) {
    this.options = { ...DEFAULT_CIRCUIT_BREAKER, ...options };
    this.now = now;
    this.bucketStart = now();
  }

  private rotate(t: number) {
    const width = this.options.windowMs / BUCKETS;
    let steps = Math.floor((t - this.bucketStart) / width);
    if (steps <= 0) return;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.ok[this.bucket] = 0;
      this.err[this.bucket] = 0;
    }
    this.bucketStart = t - ((t - this.bucketStart) % width);
  }

  private setState(s: CircuitState) {
    if (this.state === s) return;
    this.state = s;
    this.onStateChange?.(s);
  }

  /** May a request go out now? (Call record() for every request that was allowed.) */
  allow(): boolean {
    if (this.state === "closed") return true;
    const t = this.now();
    if (this.state === "open") {
      if (t - this.openedAt < this.options.openMs) return false;
      this.setState("half-open");
      this.probesInFlight = 0;
      this.probeSuccesses = 0;
    }
    if (this.probesInFlight >= this.options.halfOpenProbes) return false;
    this.probesInFlight++;
    return true;
  }

  /** An allowed request ended without a verdict (the client left): frees a half-open probe slot. */
  release() {
    if (this.state === "half-open") this.probesInFlight = Math.max(0, this.probesInFlight - 1);
  }

  /** The outcome of a try this breaker allowed. */
  recordOutcome(outcome: AttemptOutcome) {
    this.record(outcome === "ok" || (outcome === "error-status" && !this.options.errorStatuses));
  }

  record(success: boolean) {
    const t = this.now();
    if (this.state === "half-open") {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1);
      if (!success) {
        this.trip(t);
        return;
      }
      if (++this.probeSuccesses >= this.options.halfOpenProbes) {
        this.ok.fill(0);
        this.err.fill(0);
        this.setState("closed");
      }
      return;
    }
    if (this.state === "open") return;
    this.rotate(t);
    if (success) this.ok[this.bucket] = this.ok[this.bucket]! + 1;
    else {
      this.err[this.bucket] = this.err[this.bucket]! + 1;
      let ok = 0;
      let err = 0;
      for (let i = 0; i < BUCKETS; i++) {
        ok += this.ok[i]!;
        err += this.err[i]!;
      }
      const total = ok + err;
      if (total >= this.options.minRequests && err / total >= this.options.errorRatio) this.trip(t);
    }
  }

  private trip(t: number) {
    this.openedAt = t;
    this.setState("open");
  }
}
