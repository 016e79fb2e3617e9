// The sandbox, shown with hostile plugins over real sockets: a plugin can spin, bomb its memory,
// trap, answer garbage or too much, or not load at all, and the proxy answers that request by
// the plugin's failurePolicy, recycles the instance, and keeps serving every other request.
// Plugins are WAT compiled in the test and attached inline, as a RautaPlugin would attach them.
import { expect } from "chai";
import wabtInit from "wabt";
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
  keepAliveAgent,
} from "../proxy/helpers.ts";
import type { Echo } from "../proxy/helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import type { Plugin, Route } from "../../../proxy/config/schema.ts";
import { encodeDecision } from "../../../proxy/plugins/abi.ts";
import type { Decision } from "../../../proxy/plugins/abi.ts";
import { INLINE_BUDGET_MS } from "../../../proxy/plugins/loaded-plugin.ts";

const wabt = await wabtInit();

function wasm(body: string, imports = ""): string {
  const src = `(module
    (import "rauta:host" "output_set" (func $out (param i32 i32)))
    ${imports}
    (memory (export "memory") 1)
    ${body})`;
  const m = wabt.parseWat("plugin.wat", src);
  m.validate();
  return Buffer.from(m.toBinary({}).buffer).toString("base64");
}

const dataOf = (d: Decision) =>
  [...encodeDecision(d)].map(b => `\\${b.toString(16).padStart(2, "0")}`).join("");

/** on_request answers `d` (bytes in a data segment). */
function answering(d: Decision, exportName = "on_request"): string {
  const n = encodeDecision(d).length;
  return wasm(`(data (i32.const 16) "${dataOf(d)}")
    (func (export "${exportName}") (result i32) (call $out (i32.const 16) (i32.const ${n})) (i32.const 0))`);
}

export const MODULES = {
  noop: () => wasm(`(func (export "on_request") (result i32) (i32.const 0))`),
  spin: () => wasm(`(func (export "on_request") (result i32) (loop $l (br $l)) (i32.const 0))`),
  // grows its memory until refused, then traps (what a guest allocator does on OOM)
  memoryBomb: () =>
    wasm(`(func (export "on_request") (result i32)
      (loop $l (br_if $l (i32.ne (memory.grow (i32.const 7)) (i32.const -1))))
      unreachable)`),
  trap: () => wasm(`(func (export "on_request") (result i32) unreachable)`),
  failing: () => wasm(`(func (export "on_request") (result i32) (i32.const 3))`),
  garbage: () =>
    wasm(`(data (i32.const 16) "\\00\\01\\02")
      (func (export "on_request") (result i32) (call $out (i32.const 16) (i32.const 3)) (i32.const 0))`),
  // claims a 2 MiB output (memory has 2 pages so the range exists)
  oversized: () =>
    wasm(`(func (export "on_request") (result i32)
      (drop (memory.grow (i32.const 40)))
      (call $out (i32.const 0) (i32.const 2097152)) (i32.const 0))`),
  noExports: () => wasm(`(func (export "something_else") (result i32) (i32.const 0))`),
};

function plugin(id: string, inline: string, extra: Partial<Plugin> = {}): Plugin {
  return {
    id,
    source: { inline },
    config: {},
    needsBody: false,
    failurePolicy: "FailClosed",
    limits: { memoryMiB: 2, timeoutMs: 50, maxBodyBytes: 0 },
    ...extra,
  };
}

const withPlugin = (id: string, pluginId: string): Route =>
  route(id, ["a"], { filters: [{ type: "Plugin", pluginId }] });

function pluginConfig(
  port: number,
  a: Echo,
  plugins: Plugin[],
  generation = 1,
  extraRoutes: Route[] = [],
) {
  const routes = [
    route("plain", ["a"]),
    ...plugins.map(p => withPlugin(p.id.replace("/", "-"), p.id)),
    ...extraRoutes,
  ];
  return config(
    {
      listeners: [
        listener(port, [
          {
            hostname: "*",
            routes: routes
              .filter(r => r.id !== "plain")
              .map(r => ({ routeId: r.id, match: prefix(`/${r.id}`) }))
              .concat([{ routeId: "plain", match: prefix("/") }]),
          },
        ]),
      ],
      routes,
      clusters: [cluster("a", [a.port])],
      plugins,
    },
    generation,
  );
}

const sum = async (proxy: Proxy, name: string, labels: Record<string, string>) => {
  const m = await proxy.metrics.registry.getSingleMetric(name)!.get();
  return m.values
    .filter(v => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((n, v) => n + v.value, 0);
};

describe("plugin sandbox: hostile plugins over real sockets", function () {
  this.timeout(30_000);
  let a: Echo, port: number, proxy: Proxy;

  before(async () => {
    a = await startEcho("a");
    port = await freePort();
    proxy = testProxy({
      plugins: { cacheDir: `${process.env.RAUTA_TEST_CACHE ?? "/tmp"}/rauta-test-plugins` },
    });
    const r = await proxy.apply(
      pluginConfig(port, a, [
        plugin("t/noop", MODULES.noop()),
        plugin("t/spin", MODULES.spin()),
        plugin("t/spin-open", MODULES.spin(), { failurePolicy: "FailOpen" }),
        plugin("t/bomb", MODULES.memoryBomb()),
        plugin("t/trap", MODULES.trap()),
        plugin("t/failing", MODULES.failing()),
        plugin("t/garbage", MODULES.garbage()),
        plugin("t/oversized", MODULES.oversized()),
        plugin("t/missing", MODULES.noExports()),
        plugin(
          "t/reject",
          answering({
            action: "reject",
            status: 403,
            headers: [["x-why", "plugin"]],
            body: new TextEncoder().encode("no entry\n"),
          }),
        ),
        plugin(
          "t/modify",
          answering({
            action: "modify",
            ops: [
              { op: "setRequestHeader", name: "x-user", value: "42" },
              { op: "removeRequestHeader", name: "x-secret" },
              { op: "setPath", path: "/rewritten/../by-plugin" },
              { op: "setResponseHeader", name: "x-plugin", value: "yes" },
            ],
          }),
        ),
      ]),
    );
    expect(r.ok, r.problems.join("\n")).to.equal(true);
    expect(r.problems.join("\n")).to.match(/plugin t\/missing: MissingExport/);
  });

  after(async () => {
    await proxy.close(100);
    await a.close();
  });

  it("runs a no-op plugin: the route answers as if it had none (empty output = CONTINUE)", async () => {
    const r = await get(port, "/t-noop/x");
    expect(r.status).to.equal(200);
    expect(r.json().backend).to.equal("a");
    expect(
      await sum(proxy, "rauta_plugin_calls_total", { plugin: "t/noop", result: "continue" }),
    ).to.be.greaterThan(0);
  });

  it("applies REJECT: status, headers and body from the plugin; nothing reaches the backend", async () => {
    const hits = a.hits;
    const r = await get(port, "/t-reject");
    expect(r.status).to.equal(403);
    expect(r.headers["x-why"]).to.equal("plugin");
    expect(r.body).to.equal("no entry\n");
    expect(a.hits).to.equal(hits);
  });

  it("applies MODIFY: request headers and path (normalized again) upstream, response headers downstream", async () => {
    const r = await get(port, "/t-modify/x?q=1", { headers: { "x-secret": "s3cret" } });
    expect(r.status).to.equal(200);
    const seen = r.json();
    expect(seen.url).to.equal("/by-plugin?q=1");
    expect(seen.headers["x-user"]).to.equal("42");
    expect(seen.headers["x-secret"]).to.equal(undefined);
    expect(r.headers["x-plugin"]).to.equal("yes");
  });

  it("stops a spinning plugin within 2x its time limit; FailClosed answers 500, other routes keep flowing", async () => {
    const t0 = performance.now();
    const spinning = get(port, "/t-spin");
    // the spin runs in-thread: requests sent meanwhile are served as soon as fuel stops it
    const others = Promise.all(Array.from({ length: 5 }, () => get(port, "/plain")));
    const r = await spinning;
    const ms = performance.now() - t0;
    expect(r.status).to.equal(500);
    expect(r.body).to.match(/plugin t\/spin failed \(FailClosed\): timeout/);
    expect(ms).to.be.below(2 * 50 + 60, `took ${ms.toFixed(0)} ms`);
    for (const o of await others) expect(o.status).to.equal(200);
    expect(
      await sum(proxy, "rauta_plugin_failures_total", { plugin: "t/spin", reason: "timeout" }),
    ).to.equal(1);
    expect(
      await sum(proxy, "rauta_plugin_instance_replacements_total", { plugin: "t/spin" }),
    ).to.equal(1);
    // the next call (isolated now) is stopped the same way
    expect((await get(port, "/t-spin")).status).to.equal(500);
  });

  it("moves a plugin that ran past its in-thread budget to a process of its own: the first spin holds the event loop 10 ms, not its 300 ms limit, and later spins hold nothing up", async () => {
    // t/spin timed out in the test above (isolation Auto): it now runs isolated
    expect(await sum(proxy, "rauta_plugin_isolated", { plugin: "t/spin" })).to.equal(1);
    const p2 = await freePort();
    const px = testProxy();
    try {
      // a 300 ms limit: plain requests sent while it spins must not wait for it
      const slow = plugin("t/slow", MODULES.spin(), {
        limits: { memoryMiB: 2, timeoutMs: 300, maxBodyBytes: 0 },
      });
      expect((await px.apply(pluginConfig(p2, a, [slow]))).ok).to.equal(true);
      const t0 = performance.now();
      const first = await get(p2, "/t-slow"); // in-thread, stopped at the budget, then isolated
      const firstMs = performance.now() - t0;
      expect(first.status).to.equal(500);
      expect(first.body).to.match(/in-thread budget 10 ms; now isolated with the full 300 ms/);
      expect(firstMs, `took ${firstMs.toFixed(0)} ms`).to.be.below(INLINE_BUDGET_MS + 60);
      expect(await sum(px, "rauta_plugin_isolated", { plugin: "t/slow" })).to.equal(1);
      let spinDone = 0;
      const spinning = get(p2, "/t-slow").then(r => ((spinDone = performance.now()), r));
      await sleep(20);
      let plainDone = 0;
      for (let i = 0; i < 5; i++) expect((await get(p2, "/plain")).status).to.equal(200);
      plainDone = performance.now();
      const r = await spinning;
      expect(r.status).to.equal(500);
      expect(r.body).to.match(/timeout/);
      expect(plainDone, "the plain requests finished before the spin was stopped").to.be.below(
        spinDone,
      );
    } finally {
      await px.close(100);
    }
  });

  it("runs a plugin with isolation Worker in a process of its own from the start", async () => {
    const p2 = await freePort();
    const px = testProxy();
    try {
      const cfg = pluginConfig(p2, a, [
        plugin(
          "t/w",
          answering({
            action: "modify",
            ops: [{ op: "setResponseHeader", name: "x-isolated", value: "1" }],
          }),
          {
            isolation: "Worker",
          },
        ),
      ]);
      expect((await px.apply(cfg)).ok).to.equal(true);
      const r = await get(p2, "/t-w");
      expect(r.status).to.equal(200);
      expect(r.headers["x-isolated"]).to.equal("1");
      // concurrent calls queue in the worker; a queue is not a stuck worker
      const burst = await Promise.all(
        Array.from({ length: 200 }, () => get(p2, "/t-w", { agent: keepAliveAgent })),
      );
      expect(burst.filter(b => b.status !== 200 || b.headers["x-isolated"] !== "1")).to.have.length(
        0,
      );
      expect(await sum(px, "rauta_plugin_isolated", { plugin: "t/w" })).to.equal(1);
    } finally {
      await px.close(100);
    }
  });

  it("lets traffic through a FailOpen plugin that spins", async () => {
    const r = await get(port, "/t-spin-open");
    expect(r.status).to.equal(200);
    expect(r.json().backend).to.equal("a");
  });

  it("caps guest memory: a memory bomb fails at its cap and the proxy's RSS stays bounded", async () => {
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 20; i++) expect((await get(port, "/t-bomb")).status).to.equal(500);
    const grown = (process.memoryUsage().rss - rss0) / 1048576;
    expect(grown).to.be.below(64, `RSS grew ${grown.toFixed(1)} MiB`);
    const r = await get(port, "/t-bomb");
    expect(r.body).to.match(/memory|unavailable/);
    expect(
      await sum(proxy, "rauta_plugin_failures_total", { plugin: "t/bomb", reason: "memory" }),
    ).to.be.greaterThan(0);
  });

  it("counts traps, non-zero returns, garbage and oversized output as failures with their reason", async () => {
    for (const [path, id, reason] of [
      ["/t-trap", "t/trap", "trap"],
      ["/t-failing", "t/failing", "error"],
      ["/t-garbage", "t/garbage", "error"],
      ["/t-oversized", "t/oversized", "output"],
    ] as const) {
      const r = await get(port, path);
      expect(r.status, path).to.equal(500);
      expect(
        await sum(proxy, "rauta_plugin_failures_total", { plugin: id, reason }),
        id,
      ).to.be.greaterThan(0);
    }
    expect((await get(port, "/plain")).status).to.equal(200);
  });

  it("suspends a plugin that keeps failing instead of calling it for every request", async () => {
    for (let i = 0; i < 8; i++) await get(port, "/t-trap");
    const skipped = await sum(proxy, "rauta_plugin_calls_total", {
      plugin: "t/trap",
      result: "skipped",
    });
    expect(skipped).to.be.greaterThan(0);
    const r = await get(port, "/t-trap");
    expect(r.status).to.equal(500);
  });

  it("answers a plugin that cannot load (missing export) by its failure policy and says why", async () => {
    const r = await get(port, "/t-missing");
    expect(r.status).to.equal(500);
    expect(r.body).to.contain("MissingExport");
  });

  it("keeps the previous version serving when a new version of a plugin does not load", async () => {
    const p2 = await freePort();
    const px = testProxy();
    try {
      expect((await px.apply(pluginConfig(p2, a, [plugin("t/v", MODULES.noop())], 1))).ok).to.equal(
        true,
      );
      expect((await get(p2, "/t-v")).status).to.equal(200);
      const broken = await px.apply(pluginConfig(p2, a, [plugin("t/v", "bm90IHdhc20=")], 2));
      expect(broken.ok).to.equal(true);
      expect(broken.problems.join("\n")).to.match(
        /plugin t\/v: InvalidModule.*previous version sha256:[a-f0-9]{64} keeps serving/,
      );
      expect((await get(p2, "/t-v")).status).to.equal(200);
    } finally {
      await px.close(100);
    }
  });

  it("calls the plugins of a whole Gateway (Listener.plugins) before the route's", async () => {
    const p2 = await freePort();
    const px = testProxy();
    try {
      const cfg = config({
        listeners: [
          listener(p2, [{ hostname: "*", routes: [{ routeId: "plain", match: prefix("/") }] }], {
            plugins: ["t/gw"],
          }),
        ],
        routes: [route("plain", ["a"])],
        clusters: [cluster("a", [a.port])],
        plugins: [
          plugin(
            "t/gw",
            answering({ action: "reject", status: 401, headers: [], body: new Uint8Array(0) }),
          ),
        ],
      });
      expect((await px.apply(cfg)).ok).to.equal(true);
      expect((await get(p2, "/anything")).status).to.equal(401);
    } finally {
      await px.close(100);
    }
  });

  it("keeps serving under a spin attack on another route", async () => {
    const attack = (async () => {
      for (let i = 0; i < 10; i++) await get(port, "/t-spin-open");
    })();
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await get(port, "/plain")).status === 200) ok++;
    await attack;
    await sleep(10);
    expect(ok).to.equal(20);
  });
});
