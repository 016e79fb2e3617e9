// A cluster's and a route's traffic settings from the config (what a BackendTrafficPolicy
// sets): least-request balancing, Maglev on a header or a session cookie, a circuit breaker and
// passive ejection of its own, active health checks with expected statuses and a Host.
import { expect } from "chai";
import type http from "node:http";
import { validateConfig } from "../../../proxy/config/load.ts";
import { cookieValue, hashKeyFor } from "../../../proxy/upstream/hash-key.ts";
import { Maglev } from "../../../proxy/upstream/maglev.ts";
import {
  cluster,
  eventually,
  freePort,
  get,
  oneRouteConfig,
  prefix,
  route,
  simpleConfig,
  startEcho,
  testProxy,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

describe("proxy: traffic settings of clusters (BackendTrafficPolicy)", function () {
  this.timeout(20_000);
  const backends: Echo[] = [];
  const echo = async (name: string, handler?: Parameters<typeof startEcho>[1]) => {
    const e = await startEcho(name, handler);
    backends.push(e);
    return e;
  };
  afterEach(async () => {
    await Promise.all(backends.splice(0).map(b => b.close()));
  });

  it("least-request sends new requests away from an endpoint that holds slow ones", async () => {
    const held: http.ServerResponse[] = [];
    const slow = await echo("slow", (req, res) => {
      if (req.url !== "/hold") return false;
      held.push(res);
      return true;
    });
    const fast = await echo("fast");
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(port, cluster("c", [slow.port, fast.port], { lb: "least-request" })),
    );
    // /hold requests that reach "slow" stay in flight there; those reaching "fast" come back
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20 && held.length === 0; i++) {
      pending.push(get(port, "/hold").catch(() => null));
      await new Promise(r => setTimeout(r, 20));
    }
    await eventually(() => held.length > 0, 5000, "a request held by the slow endpoint");
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) seen.push((await get(port, "/")).json().backend);
    expect(new Set(seen)).to.deep.equal(new Set(["fast"]));
    for (const res of held) res.end("released");
    await Promise.all(pending);
    await px.close(100);
  });

  it("Maglev on a header keeps each value on one endpoint and spreads the values", async () => {
    const eps = await Promise.all(["a", "b", "c"].map(n => echo(n)));
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(
        port,
        cluster(
          "c",
          eps.map(e => e.port),
          { lb: "maglev", hashOn: { type: "Header", name: "x-user" } },
        ),
      ),
    );
    const placed = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++)
      for (let u = 0; u < 30; u++) {
        const user = `user-${u}`;
        const backend = (await get(port, "/", { headers: { "x-user": user } })).json().backend;
        (placed.get(user) ?? placed.set(user, new Set()).get(user)!).add(backend);
      }
    expect([...placed.values()].every(s => s.size === 1)).to.equal(true);
    expect(new Set([...placed.values()].flatMap(s => [...s])).size).to.equal(3);
    await px.close(100);
  });

  it("Maglev on a cookie sets one for a new client, and the client then keeps its endpoint", async () => {
    const eps = await Promise.all(["a", "b", "c"].map(n => echo(n)));
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      oneRouteConfig(
        port,
        cluster(
          "c",
          eps.map(e => e.port),
          {
            lb: "maglev",
            hashOn: { type: "Cookie", name: "rauta-session", ttlSeconds: 3600, path: "/app" },
          },
        ),
      ),
    );
    const first = await get(port, "/");
    const setCookie = first.headers["set-cookie"]?.[0] ?? "";
    expect(setCookie).to.match(
      /^rauta-session=[A-Za-z0-9_-]{16}; Path=\/app; HttpOnly; Max-Age=3600$/,
    );
    const cookie = setCookie.split(";")[0]!;
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) {
      const r = await get(port, "/", { headers: { cookie: `theme=dark; ${cookie}` } });
      expect(r.headers["set-cookie"]).to.equal(undefined);
      seen.add(r.json().backend);
    }
    expect([...seen]).to.deep.equal([first.json().backend]);
    await px.close(100);
  });

  it("opens a cluster's own circuit breaker by its thresholds while a cluster with the defaults stays closed", async () => {
    const failing = await echo("failing", (_req, res) => {
      res.writeHead(500);
      res.end("no");
      return true;
    });
    const port = await freePort();
    const px = testProxy({ outlier: { consecutiveFailures: 0 } });
    await px.apply(
      simpleConfig(
        port,
        [
          { routeId: "strict", match: prefix("/strict") },
          { routeId: "lenient", match: prefix("/") },
        ],
        [route("strict", ["strict"]), route("lenient", ["lenient"])],
        [
          cluster("strict", [failing.port], {
            circuitBreaker: {
              windowMs: 10_000,
              minRequests: 3,
              errorRatio: 0.5,
              openMs: 60_000,
              halfOpenProbes: 1,
              errorStatuses: true,
            },
          }),
          cluster("lenient", [failing.port]),
        ],
      ),
    );
    const strict = [];
    for (let i = 0; i < 5; i++) strict.push(await get(port, "/strict"));
    expect(strict.map(r => r.status)).to.deep.equal([500, 500, 500, 503, 503]);
    expect(strict[4]!.body).to.contain("circuit breaker open for cluster strict");
    const lenient = [];
    for (let i = 0; i < 5; i++) lenient.push((await get(port, "/")).status);
    expect(lenient).to.deep.equal([500, 500, 500, 500, 500]);
    await px.close(100);
  });

  it("ejects by a cluster's own outlierDetection when the proxy default is off", async () => {
    const bad = await echo("bad", (_req, res) => {
      res.writeHead(502);
      res.end("bad");
      return true;
    });
    const good = await echo("good");
    const port = await freePort();
    const px = testProxy({
      outlier: { consecutiveFailures: 0 },
      circuitBreaker: { minRequests: 1000 },
    });
    await px.apply(
      oneRouteConfig(
        port,
        cluster("c", [bad.port, good.port], {
          outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 60_000 },
        }),
      ),
    );
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(port, "/")).status);
    // two 502s from "bad" eject it; from then on only "good" answers
    expect(statuses.filter(s => s === 502)).to.have.length(2);
    expect(statuses.slice(-6)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    await px.close(100);
  });

  it("health-checks with the expected statuses and Host, takes a failing endpoint out and brings it back", async () => {
    let answer = 204;
    const hosts = new Set<string>();
    const checked = await echo("checked", (req, res) => {
      if (req.url !== "/ready") return false;
      hosts.add(req.headers.host ?? "");
      res.writeHead(answer);
      res.end();
      return true;
    });
    // probed too: always ready
    const other = await echo("other", (req, res) => {
      if (req.url !== "/ready") return false;
      res.writeHead(204);
      res.end();
      return true;
    });
    const port = await freePort();
    const px = testProxy();
    const spread = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) seen.add((await get(port, "/")).json().backend);
      return [...seen].sort().join();
    };
    await px.apply(
      oneRouteConfig(
        port,
        cluster("c", [checked.port, other.port], {
          healthCheck: {
            type: "HTTP",
            path: "/ready",
            hostname: "health.internal",
            expectedStatuses: [204],
            intervalMs: 100,
            timeoutMs: 100,
            healthyThreshold: 1,
            unhealthyThreshold: 1,
          },
        }),
      ),
    );
    await eventually(async () => (await spread()) === "checked,other", 5000, "both in rotation");
    expect([...hosts]).to.deep.equal(["health.internal"]);
    answer = 200; // not an expected status: unhealthy
    await eventually(async () => (await spread()) === "other", 5000, "checked taken out");
    answer = 204;
    await eventually(async () => (await spread()) === "checked,other", 5000, "checked back");
    const m = await px.metrics.registry.getSingleMetricAsString("rauta_endpoint_healthy");
    expect(m).to.contain(`endpoint="c|http1|127.0.0.1:${checked.port}"} 1`);
    await px.close(100);
  });

  it("keeps a cluster's health verdicts to itself: another cluster on the same endpoint still uses it", async () => {
    const shared = await echo("shared", (req, res) => {
      if (req.url !== "/never-healthy") return false;
      res.writeHead(503);
      res.end();
      return true;
    });
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        port,
        [
          { routeId: "checked", match: prefix("/checked") },
          { routeId: "plain", match: prefix("/") },
        ],
        [route("checked", ["checked"]), route("plain", ["plain"])],
        [
          cluster("checked", [shared.port], {
            healthCheck: {
              type: "HTTP",
              path: "/never-healthy",
              intervalMs: 100,
              timeoutMs: 100,
              healthyThreshold: 1,
              unhealthyThreshold: 1,
            },
          }),
          cluster("plain", [shared.port]),
        ],
      ),
    );
    await eventually(
      async () => (await get(port, "/checked")).status === 503,
      5000,
      "the checked cluster without a healthy endpoint",
    );
    expect((await get(port, "/plain")).status).to.equal(200);
    await px.close(100);
  });

  it("refuses hashOn without Maglev and a health check timeout past its interval", async () => {
    const port = await freePort();
    const bad = oneRouteConfig(
      port,
      cluster("c", [1], {
        hashOn: { type: "SourceIP" },
        healthCheck: {
          type: "TCP",
          intervalMs: 100,
          timeoutMs: 500,
          healthyThreshold: 1,
          unhealthyThreshold: 1,
        },
      }),
    );
    expect(() => validateConfig(bad)).to.throw(/hashOn needs lb maglev[\s\S]*timeoutMs is longer/);
  });
});

describe("hash keys (hash-key.ts)", () => {
  it("reads a cookie among others and ignores empty values", () => {
    expect(cookieValue("a=1; sid=xyz; b=2", "sid")).to.equal("xyz");
    expect(cookieValue(["a=1", "sid=q"], "sid")).to.equal("q");
    expect(cookieValue("sid=", "sid")).to.equal(null);
    expect(cookieValue(undefined, "sid")).to.equal(null);
    expect(cookieValue("xsid=1", "sid")).to.equal(null);
  });

  it("falls back to no key (round robin) when the hashed header is missing", () => {
    expect(hashKeyFor({ type: "Header", name: "x-user" }, "10.0.0.1", {}).key).to.equal(null);
    expect(hashKeyFor(undefined, "10.0.0.1", {}).key).to.equal("10.0.0.1");
  });
});

describe("maglev: adding an endpoint", () => {
  it("moves about 1/N of the keys, nearly all of them to the new endpoint", () => {
    const before = new Maglev(["a", "b", "c", "d"], 65537);
    const names = ["a", "b", "c", "d", "e"];
    const after = new Maglev(names, 65537);
    let moved = 0;
    let toNew = 0;
    for (let i = 0; i < 10_000; i++) {
      const key = `client-${i}`;
      const was = ["a", "b", "c", "d"][before.lookup(key)];
      const now = names[after.lookup(key)];
      if (was === now) continue;
      moved++;
      if (now === "e") toNew++;
    }
    expect(moved / 10_000).to.be.within(0.15, 0.3);
    // Maglev trades a little extra churn among the others for an even spread (the paper's §5.3)
    expect(toNew / moved).to.be.above(0.85);
  });
});
