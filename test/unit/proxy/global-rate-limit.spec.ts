// The global rate limit (rateLimit.global): one budget in a real Redis shared by two proxies (two
// replicas), the same 429 and RateLimit headers as the local limit, and what a request gets while
// Redis is away (FailOpen: through; FailClosed: 503), counted and recovered from.
import { expect } from "chai";
import type { RateLimit } from "../../../proxy/config/schema.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import { startRedis } from "../../helpers/redis.ts";
import type { RedisServer } from "../../helpers/redis.ts";
import {
  cluster,
  freePort,
  get,
  prefix,
  route,
  simpleConfig,
  startEcho,
  testProxy,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

async function counter(px: Proxy, name: string): Promise<string> {
  const text = await px.metrics.registry.getSingleMetricAsString(name);
  return text
    .split("\n")
    .filter(l => !l.startsWith("#") && l.trim() !== "")
    .join("; ");
}

describe("proxy: global rate limit (Redis)", function () {
  this.timeout(60_000);
  let echo: Echo;
  let redis: RedisServer;
  const started: Proxy[] = [];
  before(async () => {
    echo = await startEcho("a");
    redis = await startRedis();
  });
  after(async () => {
    await echo.close();
    await redis.stop();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map(px => px.close(100)));
  });

  const limit = (
    extra: Partial<RateLimit> = {},
    failureMode: "FailOpen" | "FailClosed" = "FailOpen",
  ) =>
    ({
      requests: 1,
      intervalMs: 3_600_000,
      burst: 4,
      key: { type: "ClientIP" },
      global: { redisUrl: redis.url, failureMode },
      ...extra,
    }) satisfies RateLimit;

  async function replica(rateLimit: RateLimit, routeId = "r"): Promise<number> {
    const port = await freePort();
    const px = testProxy();
    started.push(px);
    const applied = await px.apply(
      simpleConfig(
        port,
        [{ routeId, match: prefix("/") }],
        [route(routeId, ["a"], { rateLimit })],
        [cluster("a", [echo.port])],
      ),
    );
    expect(applied.ok, JSON.stringify(applied)).to.equal(true);
    // the first connection to Redis is made in the background
    await new Promise(r => setTimeout(r, 300));
    return port;
  }

  it("holds one budget across two proxies: 4 requests in all, then 429 from either", async () => {
    const settings = limit({}, "FailClosed");
    const [p1, p2] = [await replica(settings, "shared"), await replica(settings, "shared")];
    const statuses: number[] = [];
    const remaining: unknown[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await get(i % 2 === 0 ? p1 : p2, "/");
      statuses.push(r.status);
      remaining.push(r.headers["x-ratelimit-remaining"]);
    }
    expect(statuses).to.deep.equal([200, 200, 200, 200, 429, 429, 429, 429]);
    expect(remaining).to.deep.equal(["3", "2", "1", "0", "0", "0", "0", "0"]);
    const limited = await get(p2, "/");
    expect(limited.headers["x-ratelimit-limit"]).to.equal("1");
    expect(limited.headers["ratelimit-policy"]).to.equal('"default";q=1;w=3600');
    // a token every hour: Retry-After counts the seconds until it is back
    expect(Number(limited.headers["retry-after"])).to.be.within(3595, 3600);
    expect(limited.body).to.contain("rate limit exceeded");
  });

  it("keeps a bucket per key: another client address has its own budget", async () => {
    const port = await replica(limit({ burst: 1 }), "per-client");
    expect((await get(port, "/", { localAddress: "127.0.0.2" })).status).to.equal(200);
    expect((await get(port, "/", { localAddress: "127.0.0.2" })).status).to.equal(429);
    expect((await get(port, "/", { localAddress: "127.0.0.3" })).status).to.equal(200);
  });

  it("refills at the configured rate (Redis's clock, shared by the replicas)", async () => {
    const port = await replica(limit({ requests: 10, intervalMs: 1000, burst: 1 }), "refill");
    expect((await get(port, "/")).status).to.equal(200);
    expect((await get(port, "/")).status).to.equal(429);
    await new Promise(r => setTimeout(r, 150)); // a token every 100 ms
    expect((await get(port, "/")).status).to.equal(200);
  });

  it("FailOpen: Redis down lets requests through, counted; the limit is back with Redis", async () => {
    const port = await replica(limit({ burst: 1 }), "open");
    const px = started.at(-1)!;
    expect((await get(port, "/")).status).to.equal(200);
    expect((await get(port, "/")).status).to.equal(429);
    await redis.stop();
    const during = [];
    for (let i = 0; i < 3; i++) during.push((await get(port, "/")).status);
    expect(during).to.deep.equal([200, 200, 200]);
    expect(await counter(px, "rauta_rate_limit_store_errors_total")).to.include(
      'rauta_rate_limit_store_errors_total{route="open",result="allowed"} 3',
    );
    await redis.start();
    // the client reconnects by itself (backoff at most 2 s); the new Redis starts empty
    let status = 0;
    for (let i = 0; i < 60 && status !== 429; i++) {
      await new Promise(r => setTimeout(r, 100));
      status = (await get(port, "/")).status;
    }
    expect(status).to.equal(429);
  });

  it("FailClosed: Redis down answers 503 with Retry-After, counted", async () => {
    const port = await replica(limit({}, "FailClosed"), "closed");
    const px = started.at(-1)!;
    expect((await get(port, "/")).status).to.equal(200);
    await redis.stop();
    try {
      const r = await get(port, "/");
      expect(r.status).to.equal(503);
      expect(r.headers["retry-after"]).to.equal("1");
      expect(r.body).to.contain("rate limit store unavailable");
      expect(await counter(px, "rauta_rate_limit_store_errors_total")).to.include(
        'rauta_rate_limit_store_errors_total{route="closed",result="denied"} 1',
      );
    } finally {
      await redis.start();
    }
  });

  it("answers within its deadline when Redis hangs (FailOpen), never holding the request", async () => {
    const port = await replica(limit({ burst: 100 }), "hung");
    expect((await get(port, "/")).status).to.equal(200);
    redis.freeze();
    try {
      const t0 = Date.now();
      expect((await get(port, "/")).status).to.equal(200);
      // the take's deadline is 100 ms
      expect(Date.now() - t0).to.be.below(1000);
      expect(await counter(started.at(-1)!, "rauta_rate_limit_store_errors_total")).to.include(
        'rauta_rate_limit_store_errors_total{route="hung",result="allowed"} 1',
      );
    } finally {
      redis.thaw();
    }
  });
});
