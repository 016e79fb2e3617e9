// When serving workers keep dying (a request that crashes every worker it reaches, a broken
// build), replacing them at once turns the primary into a fork loop and hides the problem. A
// worker that exits is replaced at once while exits are rare; once `threshold` workers exited
// within `windowMs` the pool is crash-looping: it says so (log, metric) and waits before each
// replacement, doubling the wait up to `maxDelayMs`, until the window is quiet again.
export interface RestartBackoffOptions {
  windowMs: number;
  threshold: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoffOptions = {
  windowMs: 60_000,
  threshold: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
};

export interface RestartDecision {
  delayMs: number;
  crashLooping: boolean;
  /** exits within the window, this one included */
  recentExits: number;
}

export class RestartBackoff {
  private readonly opts: RestartBackoffOptions;
  private exits: number[] = [];

  constructor(opts: Partial<RestartBackoffOptions> = {}) {
    this.opts = { ...DEFAULT_RESTART_BACKOFF, ...opts };
  }

  onExit(now: number): RestartDecision {
    const { windowMs, threshold, baseDelayMs, maxDelayMs } = this.opts;
    this.exits = this.exits.filter(t => now - t < windowMs);
    this.exits.push(now);
    const n = this.exits.length;
    if (n < threshold) return { delayMs: 0, crashLooping: false, recentExits: n };
    const delayMs = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - threshold));
    return { delayMs, crashLooping: true, recentExits: n };
  }

  /** Whether the pool is crash-looping now (exits within the window reach the threshold). */
  crashLooping(now: number): boolean {
    return this.exits.filter(t => now - t < this.opts.windowMs).length >= this.opts.threshold;
  }
}
