// Global rate limiting (a BackendTrafficPolicy's rateLimit.global): one budget shared by every
// proxy replica, kept in Redis the way Kong's redis policy and Envoy's ratelimit service keep it.
//
// The limit is GCRA (the generic cell rate algorithm, a token bucket stored as one timestamp per
// key: the "theoretical arrival time"), run as one Lua script so a take is atomic across
// replicas, timed by Redis's own clock (replicas' clocks never disagree about a bucket), and
// expiring with its bucket. A take that Redis cannot answer within the deadline is an error the
// caller turns into its fail-open or fail-closed answer; nothing queues while Redis is away
// (the offline queue is off, and a disconnected client fails at once).
import { createHash } from "node:crypto";
import { createClient } from "redis";
import type { RateLimit } from "../config/schema.ts";
import type { Logger } from "../observability/logger.ts";

// KEYS[1]: the bucket. ARGV: emission interval (ms per token), capacity (ms: interval × burst).
// Returns {tokens left (≥ 0) or -1, ms until the next token when limited}.
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nexttat = tat + interval
if nexttat - capacity > now then
  return {-1, math.ceil(nexttat - capacity - now)}
end
redis.call('SET', KEYS[1], tostring(nexttat), 'PX', math.ceil(nexttat - now))
return {math.floor((now + capacity - nexttat) / interval), 0}
`;
const GCRA_SHA = createHash("sha1").update(GCRA).digest("hex");

/** one take's deadline: a limit check must not add more than this to a request */
export const DEFAULT_TAKE_TIMEOUT_MS = 100;

export interface Take {
  /** whole tokens left after this request, or -1 when limited */
  left: number;
  /** when limited: ms until a token is back */
  retryAfterMs: number;
}

function newClient(url: string) {
  return createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      // keep trying, at most every 2 s: the store comes back by itself when Redis does
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
    },
  });
}
type Client = ReturnType<typeof newClient>;

/** One Redis server's connection, shared by every route whose global limit names it. */
export class RedisLimitStore {
  readonly url: string;
  /** the URL without credentials, for logs and errors */
  private readonly safeUrl: string;
  private client: Client;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private down = false;
  private closed = false;
  private lastReset = 0;

  constructor(url: string, logger: Logger, timeoutMs = DEFAULT_TAKE_TIMEOUT_MS) {
    this.url = url;
    const u = new URL(url);
    u.password = "";
    u.username = "";
    this.safeUrl = u.toString();
    this.logger = logger;
    this.timeoutMs = timeoutMs;
    this.client = this.connect();
  }

  private connect(): Client {
    const client = newClient(this.url);
    // one line when Redis goes away and one when it is back, not one per failed take
    client.on("error", (err: Error) => this.wentDown(err.message));
    client.on("ready", () => {
      if (this.down) this.logger.info("rate limit store reachable again", { redis: this.safeUrl });
      this.down = false;
    });
    client.connect().catch((err: Error) => this.wentDown(err.message));
    return client;
  }

  private wentDown(error: string): void {
    if (this.down || this.closed) return;
    this.down = true;
    this.logger.warn("rate limit store unreachable; global limits use their failure mode", {
      redis: this.safeUrl,
      error,
    });
  }

  /**
   * A Redis that accepts but does not answer (hung, or a network that drops replies): the client
   * would keep every unanswered command. Start over on a new connection (at most once a second),
   * which fails the old one's commands; until it is ready, takes fail at once.
   */
  private stalled(): void {
    const now = Date.now();
    if (this.closed || now - this.lastReset < 1000) return;
    this.lastReset = now;
    this.wentDown(`no answer within ${this.timeoutMs} ms`);
    const old = this.client;
    this.client = this.connect();
    old.destroy();
  }

  private command(client: Client, args: string[]): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stalled();
        reject(new Error(`redis ${this.safeUrl}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    return Promise.race([client.sendCommand(args), deadline]).finally(() => clearTimeout(timer));
  }

  /** Takes one token from `bucket` under `limit`; rejects when Redis does not answer in time. */
  async take(
    bucket: string,
    limit: Pick<RateLimit, "requests" | "intervalMs" | "burst">,
  ): Promise<Take> {
    const client = this.client;
    if (!client.isReady) throw new Error(`redis ${this.safeUrl} is not connected`);
    const interval = limit.intervalMs / limit.requests;
    const args = [bucket, String(interval), String(interval * limit.burst)];
    let reply: unknown;
    try {
      reply = await this.command(client, ["EVALSHA", GCRA_SHA, "1", ...args]);
    } catch (err) {
      // a Redis that restarted (or was flushed) has forgotten the script
      if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
      reply = await this.command(client, ["EVAL", GCRA, "1", ...args]);
    }
    const [left, wait] = reply as [number, number];
    return { left, retryAfterMs: wait };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.close().catch(() => this.client.destroy());
  }
}

/** The proxy's Redis connections by URL; a URL no config uses any more is closed on swap. */
export class RedisLimitStores {
  private readonly stores = new Map<string, RedisLimitStore>();
  private readonly logger: Logger;
  private readonly timeoutMs: number;

  constructor(logger: Logger, timeoutMs = DEFAULT_TAKE_TIMEOUT_MS) {
    this.logger = logger;
    this.timeoutMs = timeoutMs;
  }

  storeFor(url: string): RedisLimitStore {
    let s = this.stores.get(url);
    if (s === undefined) {
      s = new RedisLimitStore(url, this.logger, this.timeoutMs);
      this.stores.set(url, s);
    }
    return s;
  }

  retainOnly(urls: ReadonlySet<string>): void {
    for (const [url, s] of this.stores) {
      if (urls.has(url)) continue;
      this.stores.delete(url);
      void s.close();
    }
  }

  async close(): Promise<void> {
    const all = [...this.stores.values()];
    this.stores.clear();
    await Promise.all(all.map(s => s.close()));
  }
}
