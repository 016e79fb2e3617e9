// Listener lifecycle: graceful drain, listeners added/removed/changing protocol across swaps,
// bind failures reported, TCP health checks.
import { expect } from "chai";
import net from "node:net";
import {
  startEcho,
  freePort,
  config,
  listener,
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

describe("proxy: listener lifecycle", function () {
  this.timeout(20_000);
  let a: Echo;
  before(async () => {
    a = await startEcho("a", (req, res) => {
      if (req.url === "/slow") {
        setTimeout(() => res.end(JSON.stringify({ backend: "a", slow: true })), 400);
        return true;
      }
      return false;
    });
  });
  after(async () => {
    await a.close();
  });

  it("drains on close: in-flight requests finish, new connections are refused", async () => {
    const port = await freePort();
    const px = testProxy();
    await px.apply(oneRouteConfig(port, cluster("a", [a.port])));
    const inflight = get(port, "/slow");
    await sleep(100);
    const closing = px.close(5000);
    await sleep(50);
    const refused = await get(port, "/x").then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === "ECONNREFUSED",
    );
    expect(refused).to.equal(true);
    const r = await inflight;
    expect(r.status).to.equal(200);
    expect(r.json<{ slow: boolean }>().slow).to.equal(true);
    await closing;
  });

  it("adds and removes listeners across swaps, and changes a port's protocol", async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    const px = testProxy();
    const routes = [route("r", ["a"])];
    const clusters = [cluster("a", [a.port])];
    const vh = [{ hostname: "*", routes: [{ routeId: "r", match: prefix("/") }] }];
    await px.apply(config({ listeners: [listener(p1, vh)], routes, clusters }, 1));
    expect((await get(p1, "/")).status).to.equal(200);
    await px.apply(
      config({ listeners: [listener(p1, vh), listener(p2, vh)], routes, clusters }, 2),
    );
    expect((await get(p2, "/")).status).to.equal(200);
    await px.apply(config({ listeners: [listener(p2, vh)], routes, clusters }, 3));
    await sleep(300);
    const gone = await get(p1, "/").then(
      () => false,
      () => true,
    );
    expect(gone).to.equal(true, "p1 no longer listens");
    expect((await get(p2, "/")).status).to.equal(200);
    // HTTP → HTTPS on the same port (no certificate available: the handshake fails, but the
    // socket is rebound as TLS and plain HTTP is no longer served there)
    const res = await px.apply(
      config(
        {
          listeners: [
            listener(p2, vh, {
              protocol: "HTTPS",
              tls: {
                certificates: [
                  { secretRef: { namespace: "default", name: "missing" }, hostnames: ["*"] },
                ],
              },
            }),
          ],
          routes,
          clusters,
        },
        4,
      ),
    );
    expect(res.ok).to.equal(true);
    expect(res.problems.join()).to.contain("secret default/missing not found");
    expect([...px.listenerServers.keys()]).to.deep.equal([`HTTPS|127.0.0.1:${p2}`]);
    await px.close(100);
  });

  it("reports a listener that cannot bind and keeps serving the others", async () => {
    const blocker = net.createServer();
    const taken = await freePort();
    await new Promise<void>(r => blocker.listen(taken, "127.0.0.1", () => r()));
    const ok = await freePort();
    const px = testProxy();
    const vh = [{ hostname: "*", routes: [{ routeId: "r", match: prefix("/") }] }];
    const res = await px.apply(
      config({
        listeners: [listener(taken, vh), listener(ok, vh)],
        routes: [route("r", ["a"])],
        clusters: [cluster("a", [a.port])],
      }),
    );
    expect(res.ok).to.equal(true);
    expect(res.problems.join()).to.match(/EADDRINUSE/);
    expect((await get(ok, "/")).status).to.equal(200);
    await px.close(100);
    await new Promise<void>(r => blocker.close(() => r()));
  });

  it("probes endpoints with TCP health checks when no HTTP path is set", async () => {
    const dead = await freePort();
    const port = await freePort();
    const px = testProxy({ outlier: { consecutiveFailures: 0 } });
    await px.apply(
      oneRouteConfig(
        port,
        cluster("c", [dead, a.port], {
          healthCheck: {
            type: "TCP",
            intervalMs: 100,
            timeoutMs: 100,
            unhealthyThreshold: 1,
            healthyThreshold: 1,
          },
        }),
      ),
    );
    const verdict = `{cluster="c",endpoint="http1|127.0.0.1:${dead}"} 0`;
    await eventually(
      async () =>
        (await px.metrics.registry.getSingleMetricAsString("rauta_endpoint_healthy")).includes(
          verdict,
        ),
      5000,
      "the refused endpoint found unhealthy",
    );
    for (let i = 0; i < 6; i++) expect((await get(port, "/")).status).to.equal(200);
    await px.close(100);
  });
});
