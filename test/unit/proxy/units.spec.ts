// Pure units of the data plane: Maglev, circuit breaker, token bucket, RE2 → V8 translation,
// router index, path rewriting, header plans.
import { expect } from "chai";
import fc from "fast-check";
import { RE2JS } from "re2js";
import { Maglev, isPrime } from "../../../proxy/upstream/maglev.ts";
import { maglevSizeFor } from "../../../proxy/upstream/cluster.ts";
import { CircuitBreaker } from "../../../proxy/upstream/circuit-breaker.ts";
import { TokenBucketLimiter } from "../../../proxy/upstream/rate-limit.ts";
import { compileRegex, translateRe2ToJs } from "../../../proxy/router/regex.ts";
import { HostRouter, hostOf, queryParam } from "../../../proxy/router/router.ts";
import { rewritePath } from "../../../proxy/pipeline/rewrite.ts";
import { upstreamTimeout } from "../../../proxy/runtime/generation.ts";
import { RestartBackoff } from "../../../proxy/cli/restart-backoff.ts";
import { composePlan, emptyPlan, appendPlan } from "../../../proxy/filters/headers.ts";
import { prefix, exact, regex } from "./helpers.ts";

describe("maglev", () => {
  const names = (n: number) =>
    Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:8080`);
  const keys = Array.from({ length: 50_000 }, (_, i) => `client-${i}`);

  it("uses a prime table size ≥ 100 × backends", () => {
    for (const n of [1, 3, 10, 100, 700]) {
      const m = maglevSizeFor(n);
      expect(isPrime(m)).to.equal(true);
      expect(m >= Math.min(100 * n, 65537)).to.equal(true);
    }
    expect(() => new Maglev(["a"], 100)).to.throw(/not prime/);
  });

  it("fills every slot and spreads keys evenly (within ±5%)", () => {
    for (const n of [3, 10]) {
      const m = new Maglev(names(n), 65537);
      expect([...m.table].every(x => x >= 0 && x < n)).to.equal(true);
      const counts = new Array<number>(n).fill(0);
      for (const k of keys) counts[m.lookup(k)]!++;
      const mean = keys.length / n;
      for (const c of counts) expect(Math.abs(c - mean) / mean).to.be.below(0.05);
    }
  });

  it("remaps about 1/N of keys when 1 of N backends is removed", () => {
    const n = 10;
    const all = names(n);
    const before = new Maglev(all, 65537);
    const removed = all[4]!;
    const after = new Maglev(
      all.filter(x => x !== removed),
      65537,
    );
    let moved = 0;
    let movedFromOthers = 0;
    for (const k of keys) {
      const b = before.backends[before.lookup(k)]!;
      const a = after.backends[after.lookup(k)]!;
      if (a !== b) {
        moved++;
        if (b !== removed) movedFromOthers++;
      }
    }
    const share = moved / keys.length;
    expect(share).to.be.within(0.08, 0.14); // ≈ 1/N = 0.1 (keys of the removed one must move)
    expect(movedFromOthers / keys.length).to.be.below(0.04); // few keys of surviving backends move
  });
});

describe("circuit breaker", () => {
  it("opens at ≥ 50% errors once the minimum request count is reached, half-opens after openMs", () => {
    let now = 0;
    const cb = new CircuitBreaker(
      { windowMs: 10_000, minRequests: 10, errorRatio: 0.5, openMs: 30_000, halfOpenProbes: 1 },
      () => now,
    );
    for (let i = 0; i < 4; i++) cb.record(false);
    expect(cb.state).to.equal("closed", "below the minimum request count");
    for (let i = 0; i < 5; i++) cb.record(true);
    cb.record(false); // 5 errors / 10 = 50%
    expect(cb.state).to.equal("open");
    expect(cb.allow()).to.equal(false);
    now += 29_999;
    expect(cb.allow()).to.equal(false);
    now += 1;
    expect(cb.allow()).to.equal(true); // the probe
    expect(cb.state).to.equal("half-open");
    expect(cb.allow()).to.equal(false); // only one probe at a time
    cb.record(false);
    expect(cb.state).to.equal("open");
    now += 30_000;
    expect(cb.allow()).to.equal(true);
    cb.record(true);
    expect(cb.state).to.equal("closed");
    expect(cb.allow()).to.equal(true);
  });

  it("forgets errors older than the window", () => {
    let now = 0;
    const cb = new CircuitBreaker({ windowMs: 1000, minRequests: 4, errorRatio: 0.5 }, () => now);
    cb.record(false);
    cb.record(false);
    cb.record(false);
    now += 5000;
    cb.record(true);
    cb.record(false);
    expect(cb.state).to.equal("closed");
  });
});

describe("token bucket", () => {
  it("allows bursts up to burst, then rate per second, per key", () => {
    let now = 0;
    const tb = new TokenBucketLimiter(
      { requests: 2, intervalMs: 1000, burst: 3, key: { type: "ClientIP" } },
      () => now,
    );
    // what take() returns: the tokens left, -1 when refused
    expect([tb.take("k"), tb.take("k"), tb.take("k"), tb.take("k")]).to.deep.equal([2, 1, 0, -1]);
    expect(tb.retryAfterSeconds("k")).to.equal(1);
    expect(tb.take("other")).to.equal(2);
    now += 500; // +1 token
    expect(tb.take("k")).to.equal(0);
    expect(tb.take("k")).to.equal(-1);
    now += 10_000;
    expect([tb.take("k"), tb.take("k"), tb.take("k"), tb.take("k")]).to.deep.equal([2, 1, 0, -1]);
  });
});

describe("RE2 regexes on the hot path", () => {
  const patterns = [
    "/api/v[0-9]+/users/[a-z0-9-]+",
    "/(foo|bar)/.*",
    "[^/]+\\.(js|css)",
    "\\d{2,4}-\\w+",
    "a.c",
    "(a+)+b",
    "x{3}",
    "[]a]+",
    "\\s+x\\S",
    "foo|",
    "/static/.*\\.png",
  ];

  it("translates the safe subset to V8 and leaves the rest to re2js", () => {
    expect(compileRegex("/api/v[0-9]+").engine).to.equal("v8");
    expect(compileRegex("(?i)abc").engine).to.equal("re2js");
    expect(compileRegex("\\pL+").engine).to.equal("re2js");
    expect(compileRegex("[[:alpha:]]+").engine).to.equal("re2js");
    expect(compileRegex("(?P<name>x)").engine).to.equal("re2js");
    expect(translateRe2ToJs("a/b")).to.equal("a\\/b");
    expect(() => compileRegex("(unclosed")).to.throw();
  });

  it("gives the same full-match answers as RE2 (re2js) on random inputs", () => {
    for (const p of patterns) {
      const ours = compileRegex(p);
      const ref = RE2JS.compile(p);
      fc.assert(
        fc.property(
          fc.string({
            unit: fc.constantFrom(..."abcxyz/.-_019 \t\r\nfoobarjscsspng[]".split("")),
            maxLength: 24,
          }),
          s => ours.test(s) === ref.matches(s),
        ),
        { numRuns: 300 },
      );
    }
    expect(compileRegex("a.c").test("a\rc")).to.equal(true, "RE2 '.' matches \\r");
    expect(compileRegex("a.c").test("a\nc")).to.equal(false);
  });

  it("never backtracks catastrophically", () => {
    const t0 = Date.now();
    expect(compileRegex("(a+)+b").test(`${"a".repeat(5000)}c`)).to.equal(false);
    expect(compileRegex("(x+x+)+y").test("x".repeat(5000))).to.equal(false);
    expect(compileRegex("(.*a){12}").test(`${"a".repeat(40)}b`)).to.equal(false);
    expect(compileRegex("(.*a){12}").test("a".repeat(40))).to.equal(true);
    // exponential backtracking would take far longer than a test run; this is a hang guard
    expect(Date.now() - t0).to.be.below(5000);
  });
});

describe("router", () => {
  const vh = (
    hostname: string,
    routes: Array<{ routeId: string; match: ReturnType<typeof prefix> }>,
  ) => ({ hostname, routes });
  const view = (
    path: string,
    extra: Partial<{ method: string; query: string; headers: Record<string, string> }> = {},
  ) => ({
    method: extra.method ?? "GET",
    path,
    query: extra.query ?? "",
    headers: extra.headers ?? {},
  });

  it("picks the first entry in precedence order among index candidates", () => {
    const r = new HostRouter<string>(
      [
        vh("*", [
          { routeId: "exact", match: exact("/a/b") },
          { routeId: "long-prefix", match: prefix("/a/b") },
          {
            routeId: "hdr",
            match: prefix("/a", { headers: [{ name: "X-K", type: "Exact", value: "v" }] }),
          },
          { routeId: "re", match: regex("/a/[0-9]+") },
          { routeId: "short", match: prefix("/a/") },
          { routeId: "root", match: prefix("/") },
        ]),
      ],
      id => id,
    );
    const m = (p: string, h: Record<string, string> = {}) =>
      r.virtualHost("x")!.match(view(p, { headers: h }))?.route;
    expect(m("/a/b")).to.equal("exact");
    expect(m("/a/b/c")).to.equal("long-prefix");
    expect(m("/a/x", { "x-k": "v" })).to.equal("hdr");
    expect(m("/a/12")).to.equal("re");
    expect(m("/a/x")).to.equal("short");
    expect(m("/a")).to.equal("short");
    expect(m("/ab")).to.equal("root");
    expect(m("/")).to.equal("root");
  });

  it("indexes hosts: exact, longest wildcard suffix, then '*'", () => {
    const r = new HostRouter<string>(
      [vh("a.example.com", []), vh("*.b.example.com", []), vh("*.example.com", []), vh("*", [])],
      id => id,
    );
    expect(r.virtualHost("a.example.com")!.hostname).to.equal("a.example.com");
    expect(r.virtualHost("x.b.example.com")!.hostname).to.equal("*.b.example.com");
    expect(r.virtualHost("b.example.com")!.hostname).to.equal("*.example.com");
    expect(r.virtualHost("example.com")!.hostname).to.equal("*");
  });

  it("finds the last of 300 hosts × 300 routes by index (host map, then path map)", () => {
    const hosts = Array.from({ length: 300 }, (_, i) =>
      vh(
        `h${i}.example.com`,
        Array.from({ length: 300 }, (_, j) => ({
          routeId: `r${i}-${j}`,
          match: prefix(`/svc${j}`),
        })),
      ),
    );
    const r = new HostRouter<string>(hosts, id => id);
    expect(r.virtualHost("h299.example.com")!.match(view("/svc299/x"))!.route).to.equal("r299-299");
    expect(r.virtualHost("h0.example.com")!.match(view("/svc0"))!.route).to.equal("r0-0");
    expect(r.virtualHost("h0.example.com")!.match(view("/svc3000"))).to.equal(null);
  });

  it("gives the same answer as a linear scan of the precedence list (property)", () => {
    const seg = fc.constantFrom("a", "b", "api", "v1", "x");
    const pathArb = fc.array(seg, { maxLength: 4 }).map(p => `/${p.join("/")}`);
    const matchArb = fc.record({
      kind: fc.constantFrom("Exact", "PathPrefix", "RegularExpression"),
      path: pathArb,
      trailing: fc.boolean(),
      method: fc.option(fc.constantFrom("GET", "POST"), { nil: undefined }),
      header: fc.option(fc.constantFrom("1", "2"), { nil: undefined }),
    });
    const reqArb = fc.record({
      path: fc.tuple(pathArb, fc.boolean()).map(([p, t]) => (t && p !== "/" ? `${p}/` : p)),
      method: fc.constantFrom("GET", "POST"),
      h: fc.constantFrom("1", "2", ""),
    });
    fc.assert(
      fc.property(
        fc.array(matchArb, { maxLength: 12 }),
        fc.array(reqArb, { minLength: 1, maxLength: 10 }),
        (ms, reqs) => {
          const entries = ms.map((m, i) => {
            const value =
              m.kind === "PathPrefix" && m.trailing && m.path !== "/" ? `${m.path}/` : m.path;
            const path =
              m.kind === "RegularExpression"
                ? {
                    type: "RegularExpression" as const,
                    value: `${m.path.replace(/\//g, "\\/")}(/.*)?`,
                  }
                : { type: m.kind as "Exact" | "PathPrefix", value };
            return {
              routeId: `r${i}`,
              match: {
                path,
                headers: m.header ? [{ name: "x-h", type: "Exact" as const, value: m.header }] : [],
                queryParams: [],
                ...(m.method ? { method: m.method } : {}),
              },
            };
          });
          const router = new HostRouter<string>([vh("*", entries)], id => id);
          for (const q of reqs) {
            const req = view(q.path, { method: q.method, headers: q.h ? { "x-h": q.h } : {} });
            // reference: scan the list in order with the Gateway API semantics written out plainly
            const ref = entries.find(e => {
              const m = e.match;
              if (m.method && m.method !== q.method) return false;
              if (m.headers.length && req.headers["x-h"] !== m.headers[0]!.value) return false;
              if (m.path.type === "Exact") return q.path === m.path.value;
              if (m.path.type === "PathPrefix") {
                const p = m.path.value.replace(/\/+$/, "");
                return p === "" || q.path === p || q.path.startsWith(`${p}/`);
              }
              return new RegExp(`^(?:${m.path.value})$`).test(q.path);
            });
            const got = router.virtualHost("any")!.match(req);
            if ((got?.route ?? null) !== (ref?.routeId ?? null)) return false;
          }
          return true;
        },
      ),
      { numRuns: 400 },
    );
  });

  it("parses hosts and query parameters", () => {
    expect(hostOf("Example.COM:8080")).to.equal("example.com");
    expect(hostOf("[::1]:80")).to.equal("[::1]");
    expect(hostOf("example.com.")).to.equal("example.com");
    expect(queryParam("a=1&b=two&b=3", "b")).to.equal("two");
    expect(queryParam("x=%41%20b+c", "x")).to.equal("A b c");
    expect(queryParam("flag&y=1", "flag")).to.equal("");
    expect(queryParam("", "a")).to.equal(undefined);
  });
});

describe("filters", () => {
  it("replaces a matched prefix as the Gateway API specifies", () => {
    const rp = (path: string, pfx: string, value: string) =>
      rewritePath(path, { type: "ReplacePrefixMatch", value }, pfx.replace(/\/+$/, "").length);
    expect(rp("/prefix/one/two", "/prefix/one", "/one")).to.equal("/one/two");
    expect(rp("/strip-prefix/three", "/strip-prefix", "/")).to.equal("/three");
    expect(rp("/strip-prefix", "/strip-prefix", "/")).to.equal("/");
    expect(rp("/foo/", "/foo", "/bar")).to.equal("/bar/");
    expect(rp("/foo/x", "/foo/", "/bar/")).to.equal("/bar/x");
    expect(rewritePath("/a/b", { type: "ReplaceFullPath", value: "/full" }, 2)).to.equal("/full");
  });

  it("composes header modifiers in order into one plan", () => {
    let p = composePlan(emptyPlan(), {
      set: [{ name: "X-A", value: "1" }],
      add: [{ name: "X-B", value: "b" }],
      remove: ["x-c"],
    });
    p = composePlan(p, { set: [], add: [{ name: "x-a", value: "2" }], remove: ["X-B"] });
    const out = ["X-C", "gone", "Keep", "k", "x-b", "orig"];
    const filtered: string[] = [];
    for (let i = 0; i < out.length; i += 2)
      if (!p.drop.has(out[i]!.toLowerCase())) filtered.push(out[i]!, out[i + 1]!);
    appendPlan(filtered, p);
    expect(filtered).to.deep.equal(["Keep", "k", "X-A", "1,2"]);
  });
});

describe("upstream safety-net timeout per route", () => {
  const pool = { headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 };
  it("keeps the pool's defaults unless the route allows longer, and is off when the route turns a timeout off", () => {
    expect(upstreamTimeout({}, pool)).to.equal(null);
    expect(upstreamTimeout({ requestMs: 30_000 }, pool)).to.equal(null);
    expect(upstreamTimeout({ requestMs: 120_000 }, pool)).to.equal(120_000);
    expect(upstreamTimeout({ requestMs: 90_000, backendRequestMs: 80_000 }, pool)).to.equal(90_000);
    expect(upstreamTimeout({ backendRequestMs: 0 }, pool)).to.equal(0);
    expect(upstreamTimeout({ requestMs: 0, backendRequestMs: 5_000 }, pool)).to.equal(0);
  });
});

describe("worker restart backoff (crash-loop detection)", () => {
  it("replaces at once while exits are rare, then backs off and reports a crash loop", () => {
    const b = new RestartBackoff({
      windowMs: 1000,
      threshold: 3,
      baseDelayMs: 100,
      maxDelayMs: 350,
    });
    expect(b.onExit(0)).to.deep.equal({ delayMs: 0, crashLooping: false, recentExits: 1 });
    expect(b.onExit(10).delayMs).to.equal(0);
    expect(b.onExit(20)).to.deep.equal({ delayMs: 100, crashLooping: true, recentExits: 3 });
    expect(b.onExit(30).delayMs).to.equal(200);
    expect(b.onExit(40).delayMs).to.equal(350, "capped");
    expect(b.crashLooping(500)).to.equal(true);
    expect(b.crashLooping(1100)).to.equal(false, "the window is quiet again");
    expect(b.onExit(2000)).to.deep.equal({ delayMs: 0, crashLooping: false, recentExits: 1 });
  });
});
