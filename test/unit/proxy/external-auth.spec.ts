// The ExternalAuth filter (GEP-1494, HTTP): config in, requests through the proxy with a real
// auth service on loopback → what the client gets, what the auth service and the backend saw.
import { expect } from "chai";
import http from "node:http";
import type net from "node:net";
import type { Filter, Route } from "../../../proxy/config/schema.ts";
import {
  cluster,
  freePort,
  get,
  prefix,
  route,
  simpleConfig,
  startEcho,
  servingConfig,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

type AuthFilter = Extract<Filter, { type: "ExternalAuth" }>;

describe("proxy: ExternalAuth filter (HTTP auth service)", function () {
  this.timeout(15_000);
  let backend: Echo;
  let auth: http.Server;
  let authPort: number;
  const seen: http.IncomingMessage[] = [];

  before(async () => {
    backend = await startEcho("app");
    auth = http.createServer((req, res) => {
      seen.push(req);
      if (req.url?.startsWith("/check/hang")) return; // never answers
      if (req.headers.authorization === "Bearer good") {
        res.writeHead(200, { "x-auth-user": "alice", "x-auth-internal": "secret" });
        res.end();
      } else if (req.headers.authorization === undefined && req.url?.includes("/browser")) {
        res.writeHead(302, { location: "https://login.example.com/start?rd=/browser" });
        res.end();
      } else {
        res.writeHead(401, {
          "www-authenticate": 'Bearer realm="app"',
          "content-type": "text/plain",
        });
        res.end("sign in first");
      }
    });
    await new Promise<void>(r => auth.listen(0, "127.0.0.1", () => r()));
    authPort = (auth.address() as net.AddressInfo).port;
  });
  after(async () => {
    await backend.close();
    auth.closeAllConnections();
    await new Promise(r => auth.close(r));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const filter = (extra: Partial<AuthFilter> = {}): AuthFilter => ({
    type: "ExternalAuth",
    clusterId: "auth",
    pathPrefix: "/check",
    allowedHeaders: ["x-tenant"],
    allowedResponseHeaders: ["x-auth-user"],
    timeoutMs: 2000,
    ...extra,
  });
  const proxyWith = (f: AuthFilter, authPorts = [authPort], extra: Partial<Route> = {}) =>
    servingConfig(port =>
      simpleConfig(
        port,
        [{ routeId: "app", match: prefix("/") }],
        [route("app", ["app"], { filters: [f], ...extra })],
        [cluster("app", [backend.port]), cluster("auth", authPorts)],
      ),
    );

  it("lets an allowed request through with the auth service's allowed headers, and asks with the request's method, path, Host and Authorization", async () => {
    const { port, px } = await proxyWith(filter());
    const hits = backend.hits;
    const r = await get(port, "/private/x?a=1", {
      method: "DELETE",
      host: "app.example.com",
      headers: { authorization: "Bearer good", "x-tenant": "t1", "x-other": "no", cookie: "c=1" },
    });
    expect(r.status).to.equal(200);
    expect(backend.hits).to.equal(hits + 1);
    const upstream = r.json().headers;
    expect(upstream["x-auth-user"]).to.equal("alice");
    expect(upstream["x-auth-internal"]).to.equal(undefined);
    const asked = seen[0]!;
    expect(asked.method).to.equal("DELETE");
    expect(asked.url).to.equal("/check/private/x?a=1");
    expect(asked.headers.host).to.equal("app.example.com");
    expect(asked.headers["x-tenant"]).to.equal("t1");
    expect(asked.headers["x-other"]).to.equal(undefined);
    expect(asked.headers.cookie).to.equal(undefined);
    expect(asked.headers["x-forwarded-uri"]).to.equal("/private/x?a=1");
    expect(asked.headers["x-forwarded-method"]).to.equal("DELETE");
    // no body goes along (nor the client's Content-Length)
    expect(asked.headers["content-length"] ?? "0").to.equal("0");
    await px.close(100);
  });

  it("returns the auth service's denial as it came (401, WWW-Authenticate, body) without reaching the backend", async () => {
    const { port, px } = await proxyWith(filter());
    const hits = backend.hits;
    const r = await get(port, "/private/x");
    expect(r.status).to.equal(401);
    expect(r.headers["www-authenticate"]).to.equal('Bearer realm="app"');
    expect(r.body).to.equal("sign in first");
    expect(backend.hits).to.equal(hits);
    const redirect = await get(port, "/browser");
    expect(redirect.status).to.equal(302);
    expect(redirect.headers.location).to.equal("https://login.example.com/start?rd=/browser");
    const m = await px.metrics.registry.getSingleMetricAsString("rauta_external_auth_total");
    expect(m).to.contain('route="app",result="denied"} 2');
    await px.close(100);
  });

  it("copies every header of an allowing answer but Host when allowedResponseHeaders is empty", async () => {
    const { port, px } = await proxyWith(filter({ allowedResponseHeaders: [] }));
    const r = await get(port, "/", { headers: { authorization: "Bearer good" } });
    expect(r.json().headers["x-auth-internal"]).to.equal("secret");
    expect(r.json().headers.host).to.equal("example.com");
    await px.close(100);
  });

  it("fails closed with 403 when the auth service is down or does not answer in time", async () => {
    const dead = await freePort();
    const down = await proxyWith(filter(), [dead]);
    const r = await get(down.port, "/private", { headers: { authorization: "Bearer good" } });
    expect(r.status).to.equal(403);
    expect(r.body).to.contain("external auth service auth did not answer");
    await down.px.close(100);
    const slow = await proxyWith(filter({ timeoutMs: 300 }));
    const started = Date.now();
    const t = await get(slow.port, "/hang", { headers: { authorization: "Bearer good" } });
    expect(t.status).to.equal(403);
    expect(t.body).to.contain("no answer within 300 ms");
    expect(Date.now() - started).to.be.below(2000);
    const m = await slow.px.metrics.registry.getSingleMetricAsString("rauta_external_auth_total");
    expect(m).to.contain('route="app",result="error"} 1');
    await slow.px.close(100);
  });

  it("sends a 401 to the sign-in URL (a SecurityPolicy's signIn) with the request it came from; other denials pass as they came", async () => {
    const { port, px } = await proxyWith(filter(), [authPort], {
      signIn: {
        url: "https://auth.example.com/oauth2/start?rd=$scheme://$host$escaped_request_uri",
      },
    });
    const r = await get(port, "/private/x?a=1", { host: "app.example.com" });
    expect(r.status).to.equal(302);
    expect(r.headers.location).to.equal(
      "https://auth.example.com/oauth2/start?rd=http://app.example.com%2Fprivate%2Fx%3Fa%3D1",
    );
    expect(r.headers["cache-control"]).to.equal("no-store");
    // the auth service's own redirect, and an allowed request, are untouched
    const browser = await get(port, "/browser", { host: "app.example.com" });
    expect(browser.status).to.equal(302);
    expect(browser.headers.location).to.equal("https://login.example.com/start?rd=/browser");
    const ok = await get(port, "/private", { headers: { authorization: "Bearer good" } });
    expect(ok.status).to.equal(200);
    await px.close(100);
  });

  describe("forwardBody", () => {
    // an auth service that decides by the body: it allows a JSON body naming an allowed action
    let bodyAuth: http.Server;
    let bodyAuthPort: number;
    const bodies: Array<{ body: string; length: string | undefined; type: string | undefined }> =
      [];
    before(async () => {
      bodyAuth = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          bodies.push({
            body,
            length: req.headers["content-length"],
            type: req.headers["content-type"],
          });
          res.writeHead(body.includes('"action":"read"') ? 200 : 403).end();
        });
      });
      await new Promise<void>(r => bodyAuth.listen(0, "127.0.0.1", () => r()));
      bodyAuthPort = (bodyAuth.address() as net.AddressInfo).port;
    });
    after(async () => {
      bodyAuth.closeAllConnections();
      await new Promise(r => bodyAuth.close(r));
    });
    beforeEach(() => {
      bodies.length = 0;
    });

    it("sends the body with its length and type; the backend still gets the whole body", async () => {
      const { port, px } = await proxyWith(filter({ forwardBodyBytes: 1024 }), [bodyAuthPort]);
      const payload = JSON.stringify({ action: "read", doc: "x".repeat(200) });
      const r = await get(port, "/docs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: payload,
      });
      expect(r.status).to.equal(200);
      expect(bodies).to.deep.equal([
        { body: payload, length: String(payload.length), type: "application/json" },
      ]);
      expect(r.json().body).to.equal(payload);
      const denied = await get(port, "/docs", {
        method: "POST",
        body: JSON.stringify({ action: "delete" }),
      });
      expect(denied.status).to.equal(403);
      await px.close(100);
    });

    it("answers 413 to a body longer than maxSize, without asking the auth service", async () => {
      const { port, px } = await proxyWith(filter({ forwardBodyBytes: 16 }), [bodyAuthPort]);
      const r = await get(port, "/docs", {
        method: "POST",
        body: JSON.stringify({ action: "read", pad: "y".repeat(100) }),
      });
      expect(r.status).to.equal(413);
      expect(r.body).to.contain("forwardBody.maxSize");
      expect(bodies).to.deep.equal([]);
      await px.close(100);
    });
  });
});
