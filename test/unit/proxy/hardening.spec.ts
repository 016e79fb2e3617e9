// What arrives from a client can neither crash the worker nor slip past the rules: request lines
// with another HTTP version, exceptions inside request handling, and paths written to match one
// rule and resolve to another (Envoy's CVE-2019-9901). Each case: raw request → status/backend.
import { expect } from "chai";
import {
  startEcho,
  freePort,
  simpleConfig,
  prefix,
  exact,
  route,
  cluster,
  testProxy,
  rawExchange,
  get,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";

const status = (s: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(s)?.[1] ?? 0);

describe("proxy hardening: crashes and path bypasses", () => {
  let pub: Echo, admin: Echo, port: number, proxy: Proxy;

  before(async () => {
    pub = await startEcho("public");
    admin = await startEcho("admin");
    port = await freePort();
    proxy = testProxy();
    const r = await proxy.apply(
      simpleConfig(
        port,
        [
          { routeId: "admin", match: prefix("/admin") },
          { routeId: "exact-secret", match: exact("/secret") },
          { routeId: "public", match: prefix("/public") },
        ],
        [route("admin", ["admin"]), route("exact-secret", ["admin"]), route("public", ["public"])],
        [cluster("public", [pub.port]), cluster("admin", [admin.port])],
      ),
    );
    expect(r.ok, r.problems.join("; ")).to.equal(true);
  });

  after(async () => {
    await proxy.close(100);
    await pub.close();
    await admin.close();
  });

  const contained = async () =>
    (await proxy.metrics.contained.get()).values.reduce((n, v) => n + v.value, 0);

  describe("request lines and exceptions", () => {
    it("answers 505 to 'GET /public HTTP/2.0' on an HTTP/1.1 connection and keeps serving", async () => {
      const out = await rawExchange(port, "GET /public HTTP/2.0\r\nHost: x\r\n\r\n");
      expect(status(out)).to.equal(505);
      expect(out).to.contain("HTTP/2.0 is not supported");
      expect((await get(port, "/public/after")).status).to.equal(200);
    });

    it("answers 505 to other major versions, serves HTTP/1.0", async () => {
      for (const v of ["HTTP/3.0", "HTTP/2.1"]) {
        const out = await rawExchange(port, `GET /public ${v}\r\nHost: x\r\n\r\n`);
        expect([505, 400], `${v}: ${out}`).to.include(status(out));
      }
      const ok = await rawExchange(port, "GET /public HTTP/1.0\r\nHost: x\r\n\r\n");
      expect(status(ok)).to.equal(200);
    });

    it("ends a request whose handling throws with a 500, counts and survives it", async () => {
      const gen = proxy.current!;
      const r = gen.routes.get("public")!;
      const saved = r.backends;
      // a defect inside request handling, simulated by corrupting the prepared route
      Object.defineProperty(r, "backends", {
        configurable: true,
        get() {
          throw new TypeError("simulated defect");
        },
      });
      const before = await contained();
      try {
        const res = await get(port, "/public/boom");
        expect(res.status).to.equal(500);
        expect(res.body).to.contain("failed to handle this request");
      } finally {
        Object.defineProperty(r, "backends", { configurable: true, writable: true, value: saved });
      }
      expect(await contained()).to.equal(before + 1);
      expect((await get(port, "/public/after")).status).to.equal(200);
    });
  });

  describe("paths are normalized before matching and forwarded normalized", () => {
    const cases: Array<[string, string, string]> = [
      // raw target → backend → path the backend receives
      ["/public/../admin", "admin", "/admin"],
      ["/public/%2e%2e/admin", "admin", "/admin"],
      ["/public/%2E%2E/admin/users?x=1", "admin", "/admin/users?x=1"],
      ["/public/./../admin", "admin", "/admin"],
      ["/public\\..\\admin", "admin", "/admin"],
      ["//admin", "admin", "/admin"],
      ["/public/../secret", "admin", "/secret"],
      ["/%70ublic/x", "public", "/public/x"],
      ["/public/a/../b", "public", "/public/b"],
    ];
    for (const [target, backend, path] of cases) {
      it(`${target} → ${backend} ${path}`, async () => {
        const out = await rawExchange(
          port,
          `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
        expect(status(out), out).to.equal(200);
        const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as {
          backend: string;
          url: string;
        };
        expect(body.backend).to.equal(backend);
        expect(body.url).to.equal(path);
      });
    }

    it("redirects a path with escaped slashes to its unescaped form (307), forwarding nothing", async () => {
      const hits = pub.hits + admin.hits;
      const out = await rawExchange(
        port,
        "GET /public%2F..%2Fadmin?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      expect(status(out)).to.equal(307);
      expect(out).to.match(/\r\nlocation: \/admin\?q=1\r\n/i);
      expect(pub.hits + admin.hits).to.equal(hits);
    });

    it("answers 400 to malformed percent-encoding", async () => {
      const out = await rawExchange(
        port,
        "GET /public/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      expect(status(out)).to.equal(400);
      expect(out).to.contain("invalid percent-encoding");
    });
  });

  describe("per-listener path settings", () => {
    it("keeps or rejects escaped slashes and keeps repeated slashes when told to", async () => {
      const p2 = await freePort();
      const other = testProxy();
      try {
        const cfg = (escapedSlashes: "KeepUnchanged" | "RejectRequest", generation: number) =>
          simpleConfig(
            p2,
            [{ routeId: "public", match: prefix("/public") }],
            [route("public", ["public"])],
            [cluster("public", [pub.port])],
            generation,
            { pathNormalization: { mergeSlashes: false, escapedSlashes } },
          );
        expect((await other.apply(cfg("KeepUnchanged", 1))).ok).to.equal(true);
        const kept = await get(p2, "/public/a%2fb//c");
        expect(kept.status).to.equal(200);
        expect(kept.json().url).to.equal("/public/a%2Fb//c");
        expect((await other.apply(cfg("RejectRequest", 2))).ok).to.equal(true);
        const refused = await get(p2, "/public/a%2Fb");
        expect(refused.status).to.equal(400);
        expect(refused.body).to.contain("escaped slash");
      } finally {
        await other.close(100);
      }
    });
  });
});
