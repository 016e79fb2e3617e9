// Changing a plugin's config or module under load: the new version answers within a second of
// the config being applied, and no request fails meanwhile (in-flight calls finish on the old
// instances; the new ones are loaded before the swap).
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
  it("swaps a plugin's config and then its module within a second, failing no request", async () => {
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
      const seen: Array<{ t: number; status: number; limit: string | undefined }> = [];
      const workers = Array.from({ length: 8 }, async () => {
        while (!stop) {
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
          seen.push({ t: performance.now(), ...r });
        }
      });
      await new Promise(r => setTimeout(r, 300));
      // 1. the config changes
      const t1 = performance.now();
      expect((await proxy.apply(cfg(port, 2, rl(2000)))).ok).to.equal(true);
      await new Promise(r => setTimeout(r, 500));
      // 2. the module changes (another built-in: no RateLimit headers any more)
      const t2 = performance.now();
      const cors: Plugin = {
        ...rl(0),
        source: { builtin: "cors" },
        config: { allowOrigins: ["https://x.example"] },
      };
      expect((await proxy.apply(cfg(port, 3, cors))).ok).to.equal(true);
      await new Promise(r => setTimeout(r, 500));
      stop = true;
      await Promise.all(workers);
      const failed = seen.filter(s => s.status !== 200);
      expect(failed, `failed: ${JSON.stringify(failed.slice(0, 5))}`).to.have.length(0);
      const firstAfter = (t: number, pred: (s: (typeof seen)[number]) => boolean) =>
        (seen.find(s => s.t > t && pred(s))?.t ?? Infinity) - t;
      const configMs = firstAfter(t1, s => s.limit?.startsWith("2000") ?? false);
      const moduleMs = firstAfter(t2, s => s.limit === undefined);
      console.log(
        `      ${seen.length} requests, 0 failed; config change served after ${configMs.toFixed(0)} ms, module change after ${moduleMs.toFixed(0)} ms`,
      );
      expect(configMs).to.be.below(1000);
      expect(moduleMs).to.be.below(1000);
      // nothing answers with the old version once the new one is in
      const lastOld = seen.filter(s => s.limit?.startsWith("1000")).at(-1)!.t;
      expect(lastOld).to.be.below(t1 + configMs + 50);
    } finally {
      await proxy.close(100);
    }
  });
});
