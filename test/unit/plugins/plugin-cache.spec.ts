// The host-kept cache behind cache_get / cache_set: bounded, expiring, least recently used out
// first, and scoped to one plugin version (a config or key change never sees the old entries).
import { expect } from "chai";
import crypto from "node:crypto";
import {
  CACHE_MAX_KEY_BYTES,
  CACHE_MAX_VALUE_BYTES,
  PluginCache,
} from "../../../proxy/plugins/plugin-cache.ts";
import { PluginRuntime } from "../../../proxy/plugins/runtime.ts";
import { Metrics } from "../../../proxy/observability/metrics.ts";
import { silentLogger } from "../../../proxy/observability/logger.ts";
import { encodeInput } from "../../../proxy/plugins/abi.ts";
import type { Plugin } from "../../../proxy/config/schema.ts";
import { plugins, request } from "./helpers.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("plugin cache (cache_get / cache_set)", () => {
  it("returns what was stored until its ttl passes, then forgets it", () => {
    const c = new PluginCache();
    expect(c.set("k", bytes("v"), 1000, 0)).to.equal(true);
    expect(c.get("k", 999)).to.deep.equal(bytes("v"));
    expect(c.get("k", 1000)).to.equal(null);
    expect(c.size).to.equal(0);
  });

  it("keeps a copy: the guest's memory changing later does not change the entry", () => {
    const c = new PluginCache();
    const v = bytes("abc");
    c.set("k", v, 1000, 0);
    v[0] = 0x7a;
    expect(new TextDecoder().decode(c.get("k", 1)!)).to.equal("abc");
  });

  it("refuses a ttl that is not positive and keys or values over their bounds", () => {
    const c = new PluginCache();
    expect(c.set("k", bytes("v"), 0, 0)).to.equal(false);
    expect(c.set("k", bytes("v"), Number.NaN, 0)).to.equal(false);
    expect(c.set("x".repeat(CACHE_MAX_KEY_BYTES + 1), bytes("v"), 1000, 0)).to.equal(false);
    expect(c.set("k", new Uint8Array(CACHE_MAX_VALUE_BYTES + 1), 1000, 0)).to.equal(false);
    expect(c.size).to.equal(0);
  });

  it("drops the least recently used entry past maxEntries or maxBytes", () => {
    const c = new PluginCache(3, 1 << 20);
    for (const k of ["a", "b", "c"]) c.set(k, bytes(k), 1000, 0);
    c.get("a", 1); // a is now the most recent
    c.set("d", bytes("d"), 1000, 0);
    expect(["a", "b", "c", "d"].map(k => c.get(k, 2) !== null)).to.deep.equal([
      true,
      false,
      true,
      true,
    ]);
    // an entry hit often survives any number of others coming and going
    const busy = new PluginCache(10, 1 << 20);
    busy.set("hot", bytes("hot"), 1000, 0);
    for (let i = 0; i < 500; i++) {
      busy.set(`k${i}`, bytes("v"), 1000, 0);
      if (i % 4 === 0) expect(busy.get("hot", 1), `after ${i}`).to.not.equal(null);
      expect(busy.size).to.be.at.most(10);
    }
    const small = new PluginCache(100, 100);
    small.set("a", new Uint8Array(60), 1000, 0);
    small.set("b", new Uint8Array(30), 1000, 0);
    small.set("c", new Uint8Array(30), 1000, 0); // 60 + 30 + 30 + keys > 100: a goes
    expect(small.get("a", 1)).to.equal(null);
    expect(small.get("b", 1)).to.not.equal(null);
    expect(small.get("c", 1)).to.not.equal(null);
  });

  it("is scoped to one plugin version: a token cached under the old key is refused under the new", async function () {
    this.timeout(60_000);
    await plugins();
    const runtime = new PluginRuntime({
      metrics: new Metrics(undefined, false),
      logger: silentLogger(),
    });
    const oldSecret = "the-old-secret-the-old-secret-32";
    const spec = (secret: string): Plugin => ({
      id: "ns/jwt",
      source: { builtin: "jwt-auth" },
      config: { keys: [{ alg: "HS256", secret }] },
      needsBody: false,
      failurePolicy: "FailClosed",
      limits: { memoryMiB: 16, timeoutMs: 1000, maxBodyBytes: 0 },
    });
    // what a config swap does: prepare the new generation, commit it
    const generation = async (s: Plugin) => {
      const next = await runtime.prepare([s]);
      runtime.commit(next, fn => fn());
      return next.plugins.get(s.id)!;
    };
    const head = `${Buffer.from('{"alg":"HS256"}').toString("base64url")}.${Buffer.from(
      JSON.stringify({ sub: "u", exp: Math.floor(Date.now() / 1000) + 3600 }),
    ).toString("base64url")}`;
    const token = `${head}.${crypto.createHmac("sha256", oldSecret).update(head).digest("base64url")}`;
    const input = encodeInput(request({ requestHeaders: [["authorization", `Bearer ${token}`]] }));
    try {
      const before = await generation(spec(oldSecret));
      for (let i = 0; i < 2; i++) {
        const r = await before.run("request", input);
        expect(r.ok && r.decision.action).to.equal("modify");
      }
      const rotated = await generation(spec("the-new-secret-the-new-secret-32"));
      const r = await rotated.run("request", input);
      expect(r.ok && r.decision.action).to.equal("reject");
    } finally {
      await runtime.close();
    }
  });
});
