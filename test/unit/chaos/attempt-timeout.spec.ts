// Regressions found by the chaos suite (hack/chaos/scenarios.ts), reproduced in-process.
import { expect } from "chai";
import http from "node:http";
import {
  startEcho,
  freePort,
  simpleConfig,
  prefix,
  route,
  cluster,
  testProxy,
  get,
  sleep,
} from "../proxy/helpers.ts";

describe("chaos regressions: an attempt that timed out while still queued", function () {
  this.timeout(20_000);

  // The backendRequest timer of an attempt can fire before undici has written the request (it
  // waits for a connection: the pool is at its limit, or the connect is slow). The exchange
  // answers 504 then; the request must never go out afterwards: the client was told it failed
  // (a POST would run after its 504), and its late response must not reach a finished exchange.
  it("is never sent upstream after the client got its 504", async () => {
    const seen: string[] = [];
    const slow = await startEcho("slow", (req, res) => {
      seen.push(req.url ?? "");
      setTimeout(() => {
        res.writeHead(200, { "content-length": "2" });
        res.end("ok");
      }, 600);
      return true;
    });
    const port = await freePort();
    // one upstream connection: the second request waits in undici's queue
    const px = testProxy({
      pools: { connections: 1 },
      outlier: { consecutiveFailures: 0 },
      circuitBreaker: { minRequests: 10_000 },
    });
    // /first holds the one connection for 600 ms (its route allows 2 s); /second's route gives
    // up after 200 ms, while its request still waits for that connection
    await px.apply(
      simpleConfig(
        port,
        [
          { routeId: "long", match: prefix("/first") },
          { routeId: "short", match: prefix("/second") },
        ],
        [
          route("long", ["s"], { timeouts: { requestMs: 2000, backendRequestMs: 2000 } }),
          route("short", ["s"], { timeouts: { requestMs: 2000, backendRequestMs: 200 } }),
        ],
        [cluster("s", [slow.port])],
      ),
    );
    const agent = new http.Agent({ keepAlive: false });
    const first = get(port, "/first", { agent });
    await sleep(50);
    const t0 = Date.now();
    const second = await get(port, "/second", { agent, method: "POST", body: "once" });
    expect(second.status).to.equal(504);
    expect(Date.now() - t0).to.be.below(500);
    expect((await first).status).to.equal(200);
    // long enough for a request written late to reach the backend and for its answer to arrive
    await sleep(800);
    expect(seen).to.deep.equal(["/first"]);
    const errors = await px.metrics.registry.getSingleMetricAsString("rauta_upstream_errors_total");
    expect(errors).to.not.contain('kind="protocol"');
    await px.close(100);
    await slow.close();
  });
});
