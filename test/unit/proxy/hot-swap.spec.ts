// Hot swap: generations, in-flight requests on the old generation, pool reuse, and the zero-drop
// test (200 swaps under steady load, no failed or reset request).
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
  get,
  sleep,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";
import type { Route, Cluster } from "../../../proxy/config/schema.ts";

describe("proxy: hot swap", function () {
  this.timeout(40_000);
  let a: Echo, b: Echo, c: Echo, slow: Echo;
  let connections = 0;

  before(async () => {
    a = await startEcho("a");
    b = await startEcho("b");
    c = await startEcho("c");
    slow = await startEcho("slow", (req, res) => {
      setTimeout(() => res.end(JSON.stringify({ backend: "slow", headers: req.headers })), 400);
      return true;
    });
    a.server.on("connection", () => connections++);
  });

  after(async () => {
    await Promise.all([a.close(), b.close(), c.close(), slow.close()]);
  });

  it("lets an in-flight request finish on the generation it started with", async () => {
    const port = await freePort();
    const proxy = testProxy();
    const gen1 = config(
      {
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "slow", match: prefix("/") }] }]),
        ],
        routes: [
          route("slow", ["slow"], {
            filters: [
              {
                type: "RequestHeaderModifier",
                set: [{ name: "x-gen", value: "1" }],
                add: [],
                remove: [],
              },
            ],
          }),
        ],
        clusters: [cluster("slow", [slow.port])],
      },
      1,
    );
    const gen2 = config(
      {
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "other", match: prefix("/") }] }]),
        ],
        routes: [route("other", ["a"])],
        clusters: [cluster("a", [a.port])],
      },
      2,
    );
    expect((await proxy.apply(gen1)).ok).to.equal(true);
    const first = proxy.current!;
    const pending = get(port, "/in-flight");
    await sleep(100);
    expect(first.inflight).to.equal(1);
    expect((await proxy.apply(gen2)).ok).to.equal(true);
    expect(proxy.current!.number).to.equal(2);
    const after = await get(port, "/new");
    expect(after.json().backend).to.equal("a");
    const r = await pending;
    expect(r.status).to.equal(200);
    const j = r.json<{ backend: string; headers: Record<string, string> }>();
    expect(j.backend).to.equal("slow");
    expect(j.headers["x-gen"]).to.equal("1");
    expect(first.inflight).to.equal(0);
    // the removed route's series are gone from /metrics once its last request has finished
    await sleep(250);
    const m = await proxy.metrics.registry.metrics();
    expect(m).to.not.contain('route="slow"');
    expect(m).to.contain('route="other"');
    await proxy.close(100);
  });

  it("reuses the upstream connections of unchanged clusters across swaps", async () => {
    const port = await freePort();
    const proxy = testProxy();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const mk = (gen: number, extra: number) =>
      config(
        {
          listeners: [
            listener(port, [
              { hostname: "*", routes: [{ routeId: `r${extra}`, match: prefix("/") }] },
            ]),
          ],
          routes: [route(`r${extra}`, ["a"])],
          clusters: [cluster("a", [a.port])],
        },
        gen,
      );
    await proxy.apply(mk(1, 0));
    await get(port, "/", { agent });
    const before = connections;
    for (let g = 2; g <= 10; g++) {
      expect((await proxy.apply(mk(g, g))).ok).to.equal(true);
      expect((await get(port, "/", { agent })).status).to.equal(200);
    }
    expect(connections).to.equal(before, "no new upstream connection after 9 swaps");
    agent.destroy();
    await proxy.close(100);
  });

  it("zero-drop: 200 swaps (routes added and removed, backends changed) under steady load", async () => {
    const port = await freePort();
    const proxy = testProxy({ pools: { retireGraceMs: 1500 } });
    const backends = [a, b, c];
    const PATHS = 8;
    const build = (gen: number) => {
      const routes: Route[] = [];
      const clusters: Cluster[] = [];
      const entries: Array<{ routeId: string; match: ReturnType<typeof prefix> }> = [];
      // the paths the client hits exist in every generation, under changing route ids, clusters
      // and endpoints; extra routes come and go around them
      for (let p = 0; p < PATHS; p++) {
        const id = `p${p}-g${gen % 3}`;
        const cid = `c${p}-${gen % 2}`;
        const eps = [backends[(p + gen) % 3]!.port, backends[(p + gen + 1) % 3]!.port].slice(
          0,
          1 + (gen % 2),
        );
        clusters.push(cluster(cid, eps));
        routes.push(
          route(id, [cid], {
            filters: [
              {
                type: "RequestHeaderModifier",
                set: [{ name: "x-gen", value: String(gen) }],
                add: [],
                remove: [],
              },
            ],
          }),
        );
        entries.push({ routeId: id, match: prefix(`/p${p}`) });
      }
      const extra = gen % 7;
      for (let e = 0; e < extra * 5; e++) {
        const id = `extra-${gen}-${e}`;
        routes.push(route(id, [`c0-${gen % 2}`]));
        entries.unshift({ routeId: id, match: prefix(`/extra/${gen}/${e}`) });
      }
      return config(
        { listeners: [listener(port, [{ hostname: "*", routes: entries }])], routes, clusters },
        gen,
      );
    };
    expect((await proxy.apply(build(1))).ok).to.equal(true);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const deadline = Date.now() + 30_000;
    const client = async (w: number) => {
      let i = 0;
      while (!stop && Date.now() < deadline && ok + failures.length < 200_000) {
        const p = (w + i++) % PATHS;
        try {
          const r = await get(port, `/p${p}/x?i=${i}`, { agent });
          const backend = r.status === 200 ? r.json().backend : "";
          if (r.status === 200 && ["a", "b", "c"].includes(backend)) ok++;
          else failures.push(`${r.status} ${r.body.slice(0, 100)}`);
        } catch (err) {
          failures.push(`error ${(err as Error).message}`);
        }
      }
    };
    const clients = Array.from({ length: 12 }, (_, w) => client(w));
    await sleep(50);
    const okBefore = ok;
    let swaps = 0;
    for (let gen = 2; gen <= 201; gen++) {
      const res = await proxy.apply(build(gen));
      expect(res.ok, res.problems.join("; ")).to.equal(true);
      swaps++;
      await sleep(3);
    }
    await sleep(50);
    stop = true;
    await Promise.all(clients);
    agent.destroy();
    expect(swaps).to.equal(200);
    expect(proxy.current!.number).to.equal(201);
    expect(failures, failures.slice(0, 5).join("\n")).to.have.length(0);
    expect(ok - okBefore).to.be.greaterThan(500, "requests actually flowed during the swaps");
    await proxy.close(100);
  });
});
