// The proxy over real sockets on 127.0.0.1: routing, filters, backends, errors, metrics, config
// refusal. Each case is request → expected backend/response, in the shape of the Gateway API
// conformance tests.
import { expect } from "chai";
import http from "node:http";
import net from "node:net";
import {
  startEcho,
  freePort,
  simpleConfig,
  oneRouteConfig,
  config,
  listener,
  prefix,
  exact,
  regex,
  route,
  cluster,
  testProxy,
  get,
  sleep,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import { startAdminServer } from "../../../proxy/observability/admin.ts";

describe("proxy: HTTP/1.1 routing and filters (real sockets)", () => {
  let a: Echo, b: Echo, port: number, proxy: Proxy;

  before(async () => {
    a = await startEcho("a");
    b = await startEcho("b", (req, res) => {
      if (req.url?.startsWith("/slow")) {
        setTimeout(() => res.end("late"), 1500);
        return true;
      }
      if (req.url?.startsWith("/hop")) {
        res.writeHead(200, {
          connection: "close, x-private",
          "x-private": "secret",
          "keep-alive": "timeout=5",
          "x-ok": "1",
        });
        res.end("hop");
        return true;
      }
      if (req.url?.startsWith("/reset")) {
        req.socket.destroy();
        return true;
      }
      return false;
    });
    port = await freePort();
    proxy = testProxy();
    const cfg = config({
      listeners: [
        listener(port, [
          {
            hostname: "exact.example.com",
            routes: [{ routeId: "exact-host", match: prefix("/") }],
          },
          {
            hostname: "*.wild.example.com",
            routes: [{ routeId: "wild-host", match: prefix("/") }],
          },
          {
            hostname: "*",
            routes: [
              { routeId: "exact-path", match: exact("/exact") },
              {
                routeId: "hdr",
                match: prefix("/", { headers: [{ name: "x-version", type: "Exact", value: "2" }] }),
              },
              {
                routeId: "query",
                match: prefix("/", {
                  queryParams: [{ name: "v", type: "RegularExpression", value: "b[0-9]+" }],
                }),
              },
              { routeId: "method", match: prefix("/m", { method: "POST" }) },
              { routeId: "re", match: regex("/re/[a-z]+/[0-9]{2}") },
              { routeId: "redirect", match: prefix("/redirect") },
              { routeId: "redirect-https", match: prefix("/secure") },
              { routeId: "rewrite", match: prefix("/strip") },
              { routeId: "rewrite-full", match: prefix("/full") },
              { routeId: "headers", match: prefix("/headers") },
              { routeId: "null-backend", match: prefix("/invalid") },
              { routeId: "zero-weight", match: prefix("/zero") },
              { routeId: "weighted", match: prefix("/weighted") },
              { routeId: "timeout", match: prefix("/slow") },
              { routeId: "dead", match: prefix("/dead") },
              { routeId: "b", match: prefix("/hop") },
              { routeId: "b", match: prefix("/reset") },
              { routeId: "prefix-foo", match: prefix("/foo/") },
              { routeId: "root", match: prefix("/") },
            ],
          },
        ]),
      ],
      routes: [
        route("exact-host", ["a"]),
        route("wild-host", ["b"]),
        route("exact-path", ["b"]),
        route("hdr", ["b"]),
        route("query", ["b"]),
        route("method", ["b"]),
        route("re", ["b"]),
        route("redirect", [], {
          filters: [
            {
              type: "RequestRedirect",
              statusCode: 302,
              hostname: "other.example.com",
              path: { type: "ReplacePrefixMatch", value: "/moved" },
            },
          ],
        }),
        route("redirect-https", [], {
          filters: [{ type: "RequestRedirect", statusCode: 301, scheme: "https" }],
        }),
        route("rewrite", ["a"], {
          filters: [
            {
              type: "URLRewrite",
              hostname: "internal.svc",
              path: { type: "ReplacePrefixMatch", value: "/" },
            },
          ],
        }),
        route("rewrite-full", ["a"], {
          filters: [{ type: "URLRewrite", path: { type: "ReplaceFullPath", value: "/replaced" } }],
        }),
        route("headers", ["a"], {
          filters: [
            {
              type: "RequestHeaderModifier",
              set: [{ name: "X-Set", value: "set-value" }],
              add: [{ name: "X-Add", value: "added" }],
              remove: ["x-remove-me"],
            },
            {
              type: "ResponseHeaderModifier",
              set: [{ name: "X-Resp", value: "r" }],
              add: [],
              remove: ["x-backend"],
            },
          ],
        }),
        route("null-backend", [null]),
        route("zero-weight", [["a", 0]]),
        route("weighted", [
          ["a", 3],
          ["b", 1],
        ]),
        route("timeout", ["b"], { timeouts: { requestMs: 300 } }),
        route("dead", ["dead"]),
        route("b", ["b"]),
        route("prefix-foo", ["b"]),
        route("root", ["a"]),
      ],
      clusters: [
        cluster("a", [a.port]),
        cluster("b", [b.port]),
        cluster("dead", [await freePort()]),
      ],
    });
    const res = await proxy.apply(cfg);
    expect(res.ok, res.problems.join("; ")).to.equal(true);
  });

  after(async () => {
    await proxy.close(100);
    await a.close();
    await b.close();
  });

  it("routes by exact host, wildcard host and the '*' fallback", async () => {
    expect((await get(port, "/", { host: "exact.example.com" })).json().backend).to.equal("a");
    expect((await get(port, "/", { host: "x.wild.example.com:8080" })).json().backend).to.equal(
      "b",
    );
    expect((await get(port, "/", { host: "a.b.wild.example.com" })).json().backend).to.equal("b");
    // "*.wild.example.com" needs at least one label: the bare name falls to "*"
    expect((await get(port, "/", { host: "wild.example.com" })).json().backend).to.equal("a");
    expect((await get(port, "/", { host: "EXACT.Example.COM" })).json().backend).to.equal("a");
  });

  it("honours precedence order: exact path, headers, query, method, regex", async () => {
    expect((await get(port, "/exact")).json().backend).to.equal("b");
    expect((await get(port, "/exact/more")).json().backend).to.equal("a");
    expect(
      (await get(port, "/anything", { headers: { "x-version": "2" } })).json().backend,
    ).to.equal("b");
    expect(
      (await get(port, "/anything", { headers: { "x-version": "3" } })).json().backend,
    ).to.equal("a");
    expect((await get(port, "/q?v=b12")).json().backend).to.equal("b");
    expect((await get(port, "/q?v=b12x")).json().backend).to.equal("a", "regex is full-match");
    expect((await get(port, "/m", { method: "POST", body: "x" })).json().backend).to.equal("b");
    expect((await get(port, "/m")).json().backend).to.equal("a");
    expect((await get(port, "/re/abc/42")).json().backend).to.equal("b");
    expect((await get(port, "/re/abc/421")).json().backend).to.equal("a");
  });

  it("matches PathPrefix on whole segments", async () => {
    expect((await get(port, "/foo")).json().backend).to.equal("b");
    expect((await get(port, "/foo/bar")).json().backend).to.equal("b");
    expect((await get(port, "/foobar")).json().backend).to.equal("a");
  });

  it("redirects with hostname, prefix replacement and preserved query", async () => {
    const r = await get(port, "/redirect/x/y?q=1&r=2");
    expect(r.status).to.equal(302);
    expect(r.headers.location).to.equal(`http://other.example.com:${port}/moved/x/y?q=1&r=2`);
    const s = await get(port, "/secure/p");
    expect(s.status).to.equal(301);
    expect(s.headers.location).to.equal("https://example.com/secure/p");
  });

  it("rewrites the path prefix and the Host header, keeping the query", async () => {
    const r = (await get(port, "/strip/one/two?x=1")).json();
    expect(r.url).to.equal("/one/two?x=1");
    expect(r.headers.host).to.equal("internal.svc");
    expect(r.headers["x-forwarded-host"]).to.equal("example.com");
    expect((await get(port, "/strip")).json().url).to.equal("/");
    expect((await get(port, "/full/whatever?k=v")).json().url).to.equal("/replaced?k=v");
  });

  it("applies request and response header modifiers", async () => {
    const r = await get(port, "/headers", {
      headers: { "x-set": "client", "x-add": "client", "x-remove-me": "gone" },
    });
    const j = r.json();
    expect(j.headers["x-set"]).to.equal("set-value");
    expect(j.headers["x-add"]).to.equal("client,added");
    expect(j.headers).to.not.have.property("x-remove-me");
    expect(r.headers["x-resp"]).to.equal("r");
    expect(r.headers).to.not.have.property("x-backend");
  });

  it("answers 500 for an invalid backendRef and for total weight 0", async () => {
    const r = await get(port, "/invalid");
    expect(r.status).to.equal(500);
    expect(r.body).to.match(/^500 Internal Server Error: /);
    expect((await get(port, "/zero")).status).to.equal(500);
  });

  it("splits traffic by weight", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const counts: Record<string, number> = { a: 0, b: 0 };
    const replies = await Promise.all(
      Array.from({ length: 400 }, () => get(port, "/weighted", { agent })),
    );
    for (const r of replies) counts[r.json().backend]!++;
    agent.destroy();
    // 3:1 → expect ~300/100; allow wide bounds (binomial sd ≈ 8.7)
    expect(counts.a).to.be.within(250, 350);
    expect(counts.b).to.be.within(50, 150);
  });

  it("returns 404 with a clear body when nothing matches the host", async () => {
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      config({
        listeners: [
          listener(p2, [
            { hostname: "only.example.com", routes: [{ routeId: "r", match: prefix("/") }] },
          ]),
        ],
        routes: [route("r", ["a"])],
        clusters: [cluster("a", [a.port])],
      }),
    );
    const r = await get(p2, "/", { host: "other.example.com" });
    expect(r.status).to.equal(404);
    expect(r.body).to.contain("no route matches");
    await px.close(100);
  });

  it("strips hop-by-hop headers both ways and sets X-Forwarded-*", async () => {
    const r = await get(port, "/anything?keep=1", {
      headers: {
        connection: "keep-alive, x-drop-me",
        "x-drop-me": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        "x-forwarded-for": "10.0.0.1",
        "proxy-connection": "x",
      },
    });
    const j = r.json();
    expect(j.url).to.equal("/anything?keep=1");
    expect(j.headers).to.not.have.property("x-drop-me");
    expect(j.headers).to.not.have.property("te");
    expect(j.headers).to.not.have.property("proxy-connection");
    expect(j.headers["keep-alive"]).to.equal(undefined);
    expect(j.headers["x-forwarded-for"]).to.equal("10.0.0.1, 127.0.0.1");
    expect(j.headers["x-forwarded-proto"]).to.equal("http");
    const hop = await get(port, "/hop");
    expect(hop.headers).to.not.have.property("x-private");
    expect(hop.headers["x-ok"]).to.equal("1");
    expect(hop.headers["keep-alive"]).to.not.equal("timeout=5");
  });

  it("answers 504 when the request timeout expires", async () => {
    const t0 = Date.now();
    const r = await get(port, "/slow");
    expect(r.status).to.equal(504);
    expect(r.body).to.contain("request timeout");
    expect(Date.now() - t0).to.be.below(1400);
  });

  it("answers 503 when the upstream refuses connections and 502 when it resets", async () => {
    const r = await get(port, "/dead");
    expect(r.status).to.equal(503);
    expect(r.body).to.contain("upstream connect error");
    const s = await get(port, "/reset");
    expect(s.status).to.equal(502);
  });

  it("streams request bodies (content-length and chunked) to the upstream", async () => {
    const r = await get(port, "/body", { method: "POST", body: "hello world" });
    expect(r.json().body).to.equal("hello world");
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          path: "/body",
          method: "PUT",
          headers: { host: "x", "transfer-encoding": "chunked" },
        },
        res => {
          const c: Buffer[] = [];
          res.on("data", d => c.push(d));
          res.on("end", () => resolve(JSON.parse(Buffer.concat(c).toString()).body));
        },
      );
      req.on("error", reject);
      req.write("part1-");
      setTimeout(() => req.end("part2"), 20);
    });
    expect(chunked).to.equal("part1-part2");
  });

  it("counts requests by route id and status class in /metrics, and serves /readyz", async () => {
    await get(port, "/exact");
    const admin = await startAdminServer(
      {
        metrics: async () => ({
          contentType: proxy.metrics.registry.contentType,
          body: await proxy.metrics.registry.metrics(),
        }),
        ready: () => proxy.ready,
      },
      0,
      "127.0.0.1",
    );
    const ap = (admin.address() as net.AddressInfo).port;
    const m = await get(ap, "/metrics");
    expect(m.body).to.match(/rauta_requests_total\{route="exact-path",code="2xx"\} \d+/);
    expect(m.body).to.match(/rauta_requests_total\{route="null-backend",code="5xx"\} \d+/);
    expect(m.body).to.match(
      /rauta_request_duration_seconds_bucket\{le="[^"]+",route="exact-path"\}/,
    );
    expect(m.body).to.contain("rauta_config_generation 1");
    expect(m.body).to.not.contain('/exact"');
    expect((await get(ap, "/readyz")).status).to.equal(200);
    expect((await get(ap, "/healthz")).status).to.equal(200);
    admin.close();
  });

  it("/readyz is 503 until a config is loaded", async () => {
    const px = testProxy();
    const admin = await startAdminServer(
      { metrics: async () => ({ contentType: "text/plain", body: "" }), ready: () => px.ready },
      0,
      "127.0.0.1",
    );
    const ap = (admin.address() as net.AddressInfo).port;
    expect((await get(ap, "/readyz")).status).to.equal(503);
    const p2 = await freePort();
    await px.apply(oneRouteConfig(p2, cluster("a", [a.port])));
    expect((await get(ap, "/readyz")).status).to.equal(200);
    admin.close();
    await px.close(100);
  });

  it("refuses an invalid config, keeps serving the last good one, and counts the failure", async () => {
    const before = (await get(port, "/exact")).json().backend;
    const bad = simpleConfig(port, [{ routeId: "missing", match: prefix("/") }], [], [], 2);
    const res = await proxy.apply(bad);
    expect(res.ok).to.equal(false);
    expect(res.problems.join()).to.contain("route missing does not exist");
    const badRegex = simpleConfig(
      port,
      [{ routeId: "r", match: regex("(unclosed") }],
      [route("r", ["a"])],
      [cluster("a", [a.port])],
      3,
    );
    expect((await proxy.apply(badRegex)).ok).to.equal(false);
    const tampered = { ...simpleConfig(port, [], [], [], 4), hash: `sha256:${"0".repeat(64)}` };
    expect((await proxy.apply(tampered)).ok).to.equal(false);
    expect((await proxy.apply({ nonsense: true })).ok).to.equal(false);
    expect((await get(port, "/exact")).json().backend).to.equal(before);
    const m = await proxy.metrics.registry.getSingleMetricAsString(
      "rauta_config_reload_failures_total",
    );
    expect(m).to.match(/rauta_config_reload_failures_total 4/);
    expect(proxy.current?.number).to.equal(1);
  });

  it("skips a FailOpen plugin that cannot load and answers 500 for a FailClosed one", async () => {
    const p2 = await freePort();
    const px = testProxy();
    const plugin = (id: string, failurePolicy: "FailOpen" | "FailClosed") => ({
      id,
      source: { builtin: "noop" },
      config: {},
      needsBody: false,
      failurePolicy,
      limits: { memoryMiB: 16, timeoutMs: 10, maxBodyBytes: 0 },
    });
    await px.apply(
      config({
        listeners: [
          listener(p2, [
            {
              hostname: "*",
              routes: [
                { routeId: "open", match: prefix("/open") },
                { routeId: "closed", match: prefix("/closed") },
              ],
            },
          ]),
        ],
        routes: [
          route("open", ["a"], { filters: [{ type: "Plugin", pluginId: "ns/open" }] }),
          route("closed", ["a"], { filters: [{ type: "Plugin", pluginId: "ns/closed" }] }),
        ],
        clusters: [cluster("a", [a.port])],
        plugins: [plugin("ns/open", "FailOpen"), plugin("ns/closed", "FailClosed")],
      }),
    );
    expect((await get(p2, "/open")).status).to.equal(200);
    const c = await get(p2, "/closed");
    expect(c.status).to.equal(500);
    expect(c.body).to.contain("FailClosed");
    expect(c.body).to.contain("SourceNotFound");
    await px.close(100);
  });

  it("handles CORS preflight and adds CORS headers to responses", async () => {
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        p2,
        [{ routeId: "cors", match: prefix("/") }],
        [
          route("cors", ["a"], {
            filters: [
              {
                type: "CORS",
                allowOrigins: ["https://app.example.com", "https://*.trusted.io"],
                allowMethods: ["GET", "POST"],
                allowHeaders: ["x-token"],
                exposeHeaders: ["x-backend"],
                allowCredentials: true,
                maxAgeSeconds: 60,
              },
            ],
          }),
        ],
        [cluster("a", [a.port])],
      ),
    );
    const pre = await get(p2, "/x", {
      method: "OPTIONS",
      headers: { origin: "https://a.trusted.io", "access-control-request-method": "POST" },
    });
    expect(pre.status).to.equal(204);
    expect(pre.headers["access-control-allow-origin"]).to.equal("https://a.trusted.io");
    expect(pre.headers["access-control-allow-methods"]).to.equal("GET, POST");
    expect(pre.headers["access-control-allow-credentials"]).to.equal("true");
    const actual = await get(p2, "/x", { headers: { origin: "https://app.example.com" } });
    expect(actual.headers["access-control-allow-origin"]).to.equal("https://app.example.com");
    expect(actual.headers["access-control-expose-headers"]).to.equal("x-backend");
    const denied = await get(p2, "/x", { headers: { origin: "https://evil.example.com" } });
    expect(denied.headers).to.not.have.property("access-control-allow-origin");
    await px.close(100);
  });

  it("answers 504 when the backend request timeout expires, and retries it when configured", async () => {
    let calls = 0;
    const sometimesSlow = await startEcho("slowish", (_req, res) => {
      calls++;
      if (calls === 1) {
        setTimeout(() => res.end("late"), 1000);
        return true;
      }
      return false;
    });
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        p2,
        [
          { routeId: "plain", match: prefix("/plain") },
          { routeId: "retry", match: prefix("/retry") },
        ],
        [
          route("plain", ["s"], { timeouts: { backendRequestMs: 150 } }),
          route("retry", ["s"], {
            timeouts: { backendRequestMs: 150 },
            retry: { attempts: 1, codes: [504], backoffMs: 1 },
          }),
        ],
        [cluster("s", [sometimesSlow.port])],
      ),
    );
    const r = await get(p2, "/plain");
    expect(r.status).to.equal(504);
    expect(r.body).to.contain("upstream timed out");
    calls = 0;
    const t = await get(p2, "/retry");
    expect(t.status).to.equal(200);
    expect(calls).to.equal(2);
    await px.close(100);
    await sometimesSlow.close();
  });

  it("sends the RFC 7239 Forwarded header when enabled and writes access logs when asked", async () => {
    const p2 = await freePort();
    const lines: unknown[] = [];
    const { default: winston } = await import("winston");
    const { Writable } = await import("node:stream");
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const logger = winston.createLogger({
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: sink })],
    });
    const px = testProxy({ handler: { forwardedHeader: true, accessLog: true }, logger });
    await px.apply(oneRouteConfig(p2, cluster("a", [a.port])));
    const r = await get(p2, "/fw?x=1", {
      host: "shop.example.com",
      headers: { forwarded: "for=10.1.1.1" },
    });
    expect(r.json().headers.forwarded).to.equal(
      'for=10.1.1.1, for=127.0.0.1;host="shop.example.com";proto=http',
    );
    await sleep(20);
    const access = lines.find(l => (l as { message?: string }).message === "access") as Record<
      string,
      unknown
    >;
    expect(access).to.include({ method: "GET", path: "/fw?x=1", status: 200, route: "r" });
    await px.close(100);
  });

  it("proxies HEAD and 204/304 responses without a body", async () => {
    const special = await startEcho("special", (req, res) => {
      if (req.url === "/204") res.writeHead(204).end();
      else if (req.url === "/304") res.writeHead(304, { etag: '"x"' }).end();
      else return false;
      return true;
    });
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(oneRouteConfig(p2, cluster("s", [special.port])));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const head = await get(p2, "/x", { method: "HEAD", agent });
    expect(head.status).to.equal(200);
    expect(head.body).to.equal("");
    expect(head.headers["content-length"]).to.not.equal(undefined);
    expect((await get(p2, "/204", { agent })).status).to.equal(204);
    const nm = await get(p2, "/304", { agent });
    expect(nm.status).to.equal(304);
    expect(nm.headers.etag).to.equal('"x"');
    // the connection is still usable afterwards
    expect((await get(p2, "/after", { agent })).json().url).to.equal("/after");
    agent.destroy();
    await px.close(100);
    await special.close();
  });

  it("answers 502 for upstream heads it cannot relay, and keeps running", async () => {
    const raw = net.createServer(sock => {
      sock.once("data", () =>
        sock.end("HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\n\r\nok"),
      );
      sock.on("error", () => {});
    });
    await new Promise<void>(r => raw.listen(0, "127.0.0.1", () => r()));
    const rport = (raw.address() as net.AddressInfo).port;
    const garbage = net.createServer(sock => {
      sock.once("data", () => sock.end("NOT HTTP AT ALL\r\n\r\n"));
      sock.on("error", () => {});
    });
    await new Promise<void>(r => garbage.listen(0, "127.0.0.1", () => r()));
    const gport = (garbage.address() as net.AddressInfo).port;
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        p2,
        [
          { routeId: "bad", match: prefix("/bad") },
          { routeId: "garbage", match: prefix("/garbage") },
        ],
        [route("bad", ["raw"]), route("garbage", ["g"])],
        [cluster("raw", [rport]), cluster("g", [gport])],
      ),
    );
    const r = await get(p2, "/bad");
    expect(r.status).to.equal(502);
    const g = await get(p2, "/garbage");
    expect(g.status).to.equal(502);
    expect(g.body).to.contain("bad upstream response");
    await px.close(100);
    await new Promise<void>(res => raw.close(() => res()));
    await new Promise<void>(res => garbage.close(() => res()));
  });

  it("mirrors requests fire-and-forget without delaying the response", async () => {
    let mirrored = 0;
    const slowMirror = await startEcho("mirror", (_req, res) => {
      mirrored++;
      setTimeout(() => res.end("m"), 800);
      return true;
    });
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        p2,
        [{ routeId: "m", match: prefix("/") }],
        [
          route("m", ["a"], {
            filters: [{ type: "RequestMirror", clusterId: "mirror", numerator: 1, denominator: 1 }],
          }),
        ],
        [cluster("a", [a.port]), cluster("mirror", [slowMirror.port])],
      ),
    );
    const t0 = Date.now();
    const r = await get(p2, "/mirror-me");
    expect(r.json().backend).to.equal("a");
    expect(Date.now() - t0).to.be.below(500);
    await sleep(100);
    expect(mirrored).to.equal(1);
    await px.close(100);
    await slowMirror.close();
  });

  it("mirrors request bodies too (teed), and the main request gets the whole body", async () => {
    const seen: string[] = [];
    const mirror = await startEcho("mirror", (req, res) => {
      let b = "";
      req.on("data", d => (b += d));
      req.on("end", () => {
        seen.push(b);
        res.end("m");
      });
      return true;
    });
    const p2 = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        p2,
        [{ routeId: "m", match: prefix("/") }],
        [
          route("m", ["a"], {
            filters: [
              { type: "RequestMirror", clusterId: "mirror", numerator: 100, denominator: 100 },
            ],
          }),
        ],
        [cluster("a", [a.port]), cluster("mirror", [mirror.port])],
      ),
    );
    const body = "payload-".repeat(5000);
    const r = await get(p2, "/upload", { method: "POST", body });
    expect(r.json().body).to.equal(body);
    await sleep(100);
    expect(seen).to.deep.equal([body]);
    await px.close(100);
    await mirror.close();
  });
});
