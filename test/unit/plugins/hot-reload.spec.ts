// Changing a plugin's config or module under load: every request sent once apply() has resolved
// gets the new version, and no request fails meanwhile (in-flight calls finish on the old
// instances; the new ones are loaded before the swap). How long a swap takes is printed, not
// asserted: on a shared machine wall time is no property of the code (a cold module compile
// took 1.26 s in one CI run).
import { expect } from "chai";
import http from "node:http";
import {
  startEcho,
  freePort,
  config,
  listener,
  prefix,
  route,
  cluster,
  testProxy,
} from "../proxy/helpers.ts";
import type { Echo } from "../proxy/helpers.ts";
import type { Plugin } from "../../../proxy/config/schema.ts";

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

describe("plugin hot reload under load", function () {
  this.timeout(30_000);
  let a: Echo;
  before(async () => {
    a = await startEcho("a");
  });
  after(async () => {
    agent.destroy();
    await a.close();
  });

  const cfg = (port: number, generation: number, plugin: Plugin) =>
    config(
      {
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "p", match: prefix("/p") }] }]),
        ],
        routes: [route("p", ["a"], { filters: [{ type: "Plugin", pluginId: plugin.id }] })],
        clusters: [cluster("a", [a.port])],
        plugins: [plugin],
      },
      generation,
    );
  it("swaps a plugin's config and then its module, failing no request; what is sent after apply() gets the new one", async () => {
    const port = await freePort();
    const proxy = testProxy();
    // which version answered shows on the response: the rate-limit plugin's RateLimit-Limit
    // header carries its config; after the module change (another built-in) it is gone
    const rl = (limit: number): Plugin => ({
      id: "t/tag",
      source: { builtin: "rate-limit" },
      config: { requestsPerSecond: 1e9, burst: limit, headers: true },
      needsBody: false,
      failurePolicy: "FailClosed",
      limits: { memoryMiB: 16, timeoutMs: 50, maxBodyBytes: 0 },
    });
    try {
      expect((await proxy.apply(cfg(port, 1, rl(1000)))).ok).to.equal(true);
      let stop = false;
      // sent: when the request left (performance.now()), before any of the proxy's work on it
      const seen: Array<{ sent: number; status: number; limit: string | undefined }> = [];
      const workers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const sent = performance.now();
          const r = await new Promise<{ status: number; limit: string | undefined }>(resolve => {
            const req = http.get({ host: "127.0.0.1", port, path: "/p/x", agent }, res => {
              res.resume();
              res.on("end", () =>
                resolve({
                  status: res.statusCode ?? 0,
                  limit: res.headers["ratelimit-limit"] as string | undefined,
                }),
              );
            });
            req.on("error", () => resolve({ status: 0, limit: undefined }));
          });
          seen.push({ sent, ...r });
        }
      });
      await new Promise(r => setTimeout(r, 300));
      // 1. the config changes
      const t1 = performance.now();
      expect((await proxy.apply(cfg(port, 2, rl(2000)))).ok).to.equal(true);
      const applied1 = performance.now();
      await new Promise(r => setTimeout(r, 500));
      // 2. the module changes (another built-in: no RateLimit headers any more)
      const t2 = performance.now();
      let applied2 = Infinity;
      const cors: Plugin = {
        ...rl(0),
        source: { builtin: "cors" },
        config: { allowOrigins: ["https://x.example"] },
      };
      expect((await proxy.apply(cfg(port, 3, cors))).ok).to.equal(true);
      applied2 = performance.now();
      await new Promise(r => setTimeout(r, 500));
      stop = true;
      await Promise.all(workers);
      const failed = seen.filter(s => s.status !== 200);
      expect(failed, `failed: ${JSON.stringify(failed.slice(0, 5))}`).to.have.length(0);
      const firstAfter = (t: number, pred: (s: (typeof seen)[number]) => boolean) =>
        (seen.find(s => s.sent > t && pred(s))?.sent ?? Infinity) - t;
      console.log(
        `      ${seen.length} requests, 0 failed; config change served ${firstAfter(t1, s => s.limit?.startsWith("2000") ?? false).toFixed(0)} ms after apply() began (${(applied1 - t1).toFixed(0)} ms to apply), module change ${firstAfter(t2, s => s.limit === undefined).toFixed(0)} ms (${(applied2 - t2).toFixed(0)} ms to apply)`,
      );
      // once apply() has resolved, nothing sent gets the version before it
      const between = seen.filter(s => s.sent > applied1 && s.sent < t2);
      const after = seen.filter(s => s.sent > applied2);
      expect(between.length, "requests between the two swaps").to.be.above(0);
      expect(after.length, "requests after the module swap").to.be.above(0);
      expect(between.filter(s => !(s.limit?.startsWith("2000") ?? false))).to.deep.equal([]);
      expect(after.filter(s => s.limit !== undefined)).to.deep.equal([]);
    } finally {
      await proxy.close(100);
    }
  });
});
