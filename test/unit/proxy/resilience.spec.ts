// Retries, circuit breaking, rate limiting, active health checks, outlier ejection and load
// balancing over real sockets.
import { expect } from "chai";
import http from "node:http";
import {
  startEcho,
  freePort,
  simpleConfig,
  oneRouteConfig,
  prefix,
  route,
  cluster,
  testProxy,
  get,
  sleep,
  eventually,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

describe("proxy: resilience", function () {
  this.timeout(20_000);
  let a: Echo, b: Echo;
  before(async () => {
    a = await startEcho("a");
    b = await startEcho("b");
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it("retries idempotent requests on a retriable status with backoff, then succeeds", async () => {
    let calls = 0;
    const flaky = await startEcho("flaky", (_req, res) => {
      calls++;
      if (calls <= 2) {
        res.writeHead(503);
        res.end("busy");
        return true;
      }
      return false;
    });
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("f", [flaky.port]), {
        retry: { attempts: 3, codes: [503], backoffMs: 10 },
      }),
    );
    const r = await get(port, "/x");
    expect(r.status).to.equal(200);
    expect(calls).to.equal(3);
    const m = await px.metrics.registry.getSingleMetricAsString("rauta_upstream_retries_total");
    expect(m).to.contain('rauta_upstream_retries_total{cluster="f"} 2');
    // POST is not idempotent: no retry
    calls = 0;
    const p = await get(port, "/x", { method: "POST", body: "b" });
    expect(p.status).to.equal(503);
    expect(calls).to.equal(1);
    await px.close(100);
    await flaky.close();
  });

  it("stops retrying when the retry budget is spent", async () => {
    let calls = 0;
    const busy = await startEcho("busy", (_req, res) => {
      calls++;
      res.writeHead(503);
      res.end("busy");
      return true;
    });
    const port = await freePort();
    // budget: at most max(1, 0 × active) = 1 retry in flight across the cluster
    const px = testProxy({
      handler: { retryBudgetMin: 1, retryBudgetRatio: 0 },
      outlier: { consecutiveFailures: 0 },
      circuitBreaker: { minRequests: 10_000 },
    });
    await px.apply(
      oneRouteConfig(port, cluster("b", [busy.port]), {
        retry: { attempts: 3, codes: [503], backoffMs: 200 },
      }),
    );
    const replies = await Promise.all(Array.from({ length: 10 }, () => get(port, "/")));
    expect(replies.every(r => r.status === 503)).to.equal(true);
    // without a budget 10 requests × (1 + 3 retries) = 40 upstream calls
    expect(calls).to.be.below(20);
    await px.close(100);
    await busy.close();
  });

  it("retries a connection failure on another endpoint", async () => {
    const dead = await freePort();
    const port = await freePort();
    const px = testProxy({ outlier: { consecutiveFailures: 0 } });
    await px.apply(
      oneRouteConfig(port, cluster("c", [dead, a.port]), {
        retry: { attempts: 2, codes: [], backoffMs: 1 },
      }),
    );
    for (let i = 0; i < 6; i++) {
      const r = await get(port, "/x");
      expect(r.status).to.equal(200);
      expect(r.json().backend).to.equal("a");
    }
    await px.close(100);
  });

  it("opens the circuit breaker after errors and answers 503 without calling the upstream", async () => {
    let calls = 0;
    const failing = await startEcho("failing", (_req, res) => {
      calls++;
      res.writeHead(500);
      res.end("boom");
      return true;
    });
    const port = await freePort();
    const px = testProxy({
      circuitBreaker: {
        minRequests: 5,
        errorRatio: 0.5,
        openMs: 60_000,
        windowMs: 10_000,
        errorStatuses: true,
      },
      outlier: { consecutiveFailures: 0 },
    });
    await px.apply(oneRouteConfig(port, cluster("f", [failing.port])));
    for (let i = 0; i < 5; i++) expect((await get(port, "/")).status).to.equal(500);
    const r = await get(port, "/");
    expect(r.status).to.equal(503);
    expect(r.body).to.contain("circuit breaker open");
    expect(calls).to.equal(5);
    const m = await px.metrics.registry.getSingleMetricAsString("rauta_circuit_breaker_state");
    expect(m).to.contain('rauta_circuit_breaker_state{cluster="f"} 2');
    await px.close(100);
    await failing.close();
  });

  it("by default, forwards a backend's own 5xx answers however many, and opens only on refused connections", async () => {
    let calls = 0;
    const failing = await startEcho("failing-default", (_req, res) => {
      calls++;
      res.writeHead(503);
      res.end("app says no");
      return true;
    });
    const port = await freePort();
    const px = testProxy({
      circuitBreaker: { minRequests: 5, errorRatio: 0.5, openMs: 60_000, windowMs: 10_000 },
      outlier: { consecutiveFailures: 0 },
    });
    await px.apply(oneRouteConfig(port, cluster("f", [failing.port])));
    for (let i = 0; i < 10; i++) {
      const r = await get(port, "/");
      expect(r.status).to.equal(503);
      expect(r.body).to.equal("app says no");
    }
    expect(calls).to.equal(10);
    // the same cluster without a listening endpoint: connection refused counts
    const dead = await freePort();
    const port2 = await freePort();
    await px.apply(oneRouteConfig(port2, cluster("f", [dead])));
    for (let i = 0; i < 5; i++) expect((await get(port2, "/")).status).to.be.oneOf([502, 503]);
    const r = await get(port2, "/");
    expect(r.status).to.equal(503);
    expect(r.body).to.contain("circuit breaker open");
    await px.close(100);
    await failing.close();
  });

  it("rate-limits a route per client with a token bucket (429 with Retry-After and RateLimit headers)", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        rateLimit: { requests: 1, intervalMs: 1000, burst: 3, key: { type: "ClientIP" } },
      }),
    );
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await get(port, "/"));
    expect(replies.map(r => r.status)).to.deep.equal([200, 200, 200, 429, 429]);
    expect(replies.map(r => r.headers["x-ratelimit-remaining"])).to.deep.equal([
      "2",
      "1",
      "0",
      "0",
      "0",
    ]);
    expect(replies[0]!.headers["x-ratelimit-limit"]).to.equal("1");
    const r = replies[4]!;
    expect(r.headers["retry-after"]).to.equal("1");
    expect(r.headers["x-ratelimit-reset"]).to.equal("1");
    expect(r.headers["ratelimit-policy"]).to.equal('"default";q=1;w=1');
    expect(r.headers["ratelimit"]).to.equal('"default";r=0;t=1');
    expect(r.body).to.contain("rate limit exceeded");
    await px.close(100);
  });

  it("rate-limits the same way on a route whose other steps run (CORS answers a preflight first)", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        filters: [
          {
            type: "CORS",
            allowOrigins: ["https://app.example.com"],
            allowMethods: ["GET"],
            allowHeaders: [],
            exposeHeaders: [],
            allowCredentials: false,
            maxAgeSeconds: 0,
          },
        ],
        rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 1, key: { type: "ClientIP" } },
      }),
    );
    const origin = { origin: "https://app.example.com" };
    const first = await get(port, "/", { headers: origin });
    expect(first.status).to.equal(200);
    expect(first.headers["access-control-allow-origin"]).to.equal("https://app.example.com");
    expect(first.headers["x-ratelimit-remaining"]).to.equal("0");
    expect((await get(port, "/", { headers: origin })).status).to.equal(429);
    await px.close(100);
  });

  it("says how long to wait: Retry-After counts the seconds until a token is back", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        rateLimit: { requests: 6, intervalMs: 60_000, burst: 1, key: { type: "ClientIP" } },
      }),
    );
    expect((await get(port, "/")).status).to.equal(200);
    const r = await get(port, "/");
    expect(r.status).to.equal(429);
    // 6 per minute: a token every 10 s
    expect(Number(r.headers["retry-after"])).to.be.within(9, 10);
    expect(r.headers["ratelimit-policy"]).to.equal('"default";q=6;w=60');
    await px.close(100);
  });

  it("keeps a route's buckets across config reloads with the same limit, and starts over when it changes", async () => {
    const port = await freePort();
    const px = testProxy();
    const limited = (requests: number, generation: number) =>
      oneRouteConfig(
        port,
        cluster("a", [a.port]),
        { rateLimit: { requests, intervalMs: 3_600_000, burst: 2, key: { type: "ClientIP" } } },
        generation,
      );
    await px.apply(limited(1, 1));
    expect([(await get(port, "/")).status, (await get(port, "/")).status]).to.deep.equal([
      200, 200,
    ]);
    expect((await px.apply(limited(1, 2))).ok).to.equal(true);
    expect((await get(port, "/")).status).to.equal(429);
    expect((await px.apply(limited(2, 3))).ok).to.equal(true);
    expect((await get(port, "/")).status).to.equal(200);
    await px.close(100);
  });

  it("shares one bucket among all clients with key Route", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 2, key: { type: "Route" } },
      }),
    );
    const s = async (from: string) => (await get(port, "/", { localAddress: from })).status;
    expect([await s("127.0.0.1"), await s("127.0.0.2"), await s("127.0.0.3")]).to.deep.equal([
      200, 200, 429,
    ]);
    await px.close(100);
  });

  it("gives each client address a bucket of its own with key ClientIP", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 1, key: { type: "ClientIP" } },
      }),
    );
    const s = async (from: string) => (await get(port, "/", { localAddress: from })).status;
    expect([await s("127.0.0.1"), await s("127.0.0.1"), await s("127.0.0.2")]).to.deep.equal([
      200, 429, 200,
    ]);
    await px.close(100);
  });

  it("rate-limits per header value when the key is a header", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("a", [a.port]), {
        rateLimit: {
          requests: 1,
          intervalMs: 1000,
          burst: 1,
          key: { type: "Header", name: "x-api-key" },
        },
      }),
    );
    const s = async (key: string) =>
      (await get(port, "/", { headers: { "x-api-key": key } })).status;
    expect([await s("k1"), await s("k1"), await s("k2"), await s("k2")]).to.deep.equal([
      200, 429, 200, 429,
    ]);
    await px.close(100);
  });

  it("takes endpoints that fail active health checks out of rotation and brings them back", async () => {
    let healthy = true;
    const sick = await startEcho("sick", (req, res) => {
      if (req.url === "/healthz") {
        res.writeHead(healthy ? 200 : 500);
        res.end();
        return true;
      }
      return false;
    });
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(
        port,
        cluster("c", [sick.port, a.port], {
          healthCheck: {
            type: "HTTP",
            path: "/healthz",
            intervalMs: 100,
            timeoutMs: 100,
            unhealthyThreshold: 2,
            healthyThreshold: 2,
          },
        }),
      ),
    );
    const spread = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await get(port, "/")).json().backend);
      return [...seen].sort();
    };
    expect(await spread()).to.deep.equal(["a", "sick"]);
    healthy = false;
    await eventually(async () => (await spread()).join() === "a");
    healthy = true;
    await eventually(async () => (await spread()).join() === "a,sick");
    await px.close(100);
    await sick.close();
  });

  it("ejects an endpoint after consecutive failures (passive outlier detection)", async () => {
    const bad = await startEcho("bad", (_req, res) => {
      res.writeHead(502);
      res.end("bad");
      return true;
    });
    const port = await freePort();
    const px = testProxy({
      outlier: { consecutiveFailures: 3, baseEjectionMs: 60_000 },
      circuitBreaker: { minRequests: 1000 },
    });
    await px.apply(oneRouteConfig(port, cluster("c", [bad.port, a.port])));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await get(port, "/")).status);
    expect(statuses.filter(s => s === 502)).to.have.length(3);
    expect(statuses.slice(-10).every(s => s === 200)).to.equal(true);
    await px.close(100);
    await bad.close();
  });

  it("does not blame the upstream when clients abandon requests (no ejection, no breaker trip)", async () => {
    const slow = await startEcho("slow", (_req, res) => {
      setTimeout(() => res.end(JSON.stringify({ backend: "slow" })), 150);
      return true;
    });
    const port = await freePort();
    const px = testProxy({
      outlier: { consecutiveFailures: 2 },
      circuitBreaker: { minRequests: 2 },
    });
    await px.apply(oneRouteConfig(port, cluster("s", [slow.port])));
    for (let i = 0; i < 10; i++) {
      const req = http.request({ host: "127.0.0.1", port, path: "/", headers: { host: "x" } });
      req.on("error", () => {});
      req.end();
      setTimeout(() => req.destroy(), 20);
    }
    await sleep(100);
    const r = await get(port, "/");
    expect(r.status).to.equal(200);
    expect(r.json().backend).to.equal("slow");
    await px.close(100);
    await slow.close();
  });

  it("routes to ejected endpoints rather than failing everything when all are ejected (panic mode)", async () => {
    let fail = true;
    const flaky = await startEcho("flaky", (_req, res) => {
      if (!fail) return false;
      res.writeHead(502);
      res.end("bad");
      return true;
    });
    const port = await freePort();
    const px = testProxy({
      outlier: { consecutiveFailures: 2, baseEjectionMs: 60_000 },
      circuitBreaker: { minRequests: 1000 },
    });
    await px.apply(oneRouteConfig(port, cluster("f", [flaky.port])));
    expect((await get(port, "/")).status).to.equal(502);
    expect((await get(port, "/")).status).to.equal(502); // ejected now
    fail = false;
    expect((await get(port, "/")).status).to.equal(200);
    await px.close(100);
    await flaky.close();
  });

  it("balances round-robin by default and keeps a client on one endpoint with Maglev", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        port,
        [
          { routeId: "rr", match: prefix("/rr") },
          { routeId: "mg", match: prefix("/mg") },
        ],
        [route("rr", ["rr"]), route("mg", ["mg"])],
        [cluster("rr", [a.port, b.port]), cluster("mg", [a.port, b.port], { lb: "maglev" })],
      ),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const rr: string[] = [];
    const mg: string[] = [];
    for (let i = 0; i < 6; i++) rr.push((await get(port, "/rr", { agent })).json().backend);
    for (let i = 0; i < 6; i++) mg.push((await get(port, "/mg", { agent })).json().backend);
    expect(rr.filter(x => x === "a")).to.have.length(3);
    expect(new Set(mg).size).to.equal(1);
    agent.destroy();
    await px.close(100);
  });

  it("never lets the pool's upstream timeouts cut a request the route allows longer ('0s' turns them off)", async () => {
    const slow = await startEcho("slow", (_req, res) => {
      // longer than undici's timer resolution (a 100 ms timeout fires within ~1 s)
      setTimeout(() => res.end(JSON.stringify({ backend: "slow" })), 1600);
      return true;
    });
    const port = await freePort();
    // a 100 ms safety net in the pool, under routes that allow 5 s and no limit at all
    const px = testProxy({ pools: { headersTimeoutMs: 100, bodyTimeoutMs: 100 } });
    await px.apply(
      simpleConfig(
        port,
        [
          { routeId: "long", match: prefix("/long") },
          { routeId: "off", match: prefix("/off") },
          { routeId: "default", match: prefix("/") },
        ],
        [
          route("long", ["s"], { timeouts: { requestMs: 5000 } }),
          route("off", ["s"], { timeouts: { requestMs: 0 } }),
          route("default", ["s"]),
        ],
        [cluster("s", [slow.port])],
      ),
    );
    const [long, off, dflt] = await Promise.all([
      get(port, "/long"),
      get(port, "/off"),
      get(port, "/"),
    ]);
    expect(long.status).to.equal(200);
    expect(off.status).to.equal(200);
    // without a route timeout the pool's safety net applies
    expect(dflt.status).to.equal(504);
    await px.close(100);
    await slow.close();
  });
});
