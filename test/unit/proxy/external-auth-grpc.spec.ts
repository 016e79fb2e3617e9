// ExternalAuth protocol GRPC (GEP-1494; Envoy's ext_authz Check): config in, requests through
// the proxy with a real ext_authz server (hack/ext-authz, built on go-control-plane's types) →
// what the client gets, what the backend saw and what the CheckRequest held.
import { expect } from "chai";
import http2 from "node:http2";
import type net from "node:net";
import type { Filter, Route } from "../../../proxy/config/schema.ts";
import { decodeCheckResponse, encodeCheckRequest } from "../../../proxy/filters/ext-authz-proto.ts";
import { startExtAuthz } from "../../helpers/ext-authz.ts";
import type { ExtAuthz } from "../../helpers/ext-authz.ts";
import { frame } from "../../helpers/grpc.ts";
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
import type { Echo, EchoBody } from "./helpers.ts";

type AuthFilter = Extract<Filter, { type: "ExternalAuth" }>;

describe("proxy: ExternalAuth filter, protocol GRPC (a real ext_authz server)", function () {
  // the first run builds hack/ext-authz (about a minute)
  this.timeout(240_000);
  let backend: Echo;
  let authz: ExtAuthz;

  before(async () => {
    backend = await startEcho("app");
    authz = await startExtAuthz();
  });
  after(async () => {
    await backend.close();
    await authz.stop();
  });
  beforeEach(() => {
    authz.checks.length = 0;
  });

  const filter = (extra: Partial<AuthFilter> = {}): AuthFilter => ({
    type: "ExternalAuth",
    clusterId: "authz",
    protocol: "GRPC",
    pathPrefix: "",
    allowedHeaders: [],
    allowedResponseHeaders: [],
    timeoutMs: 1000,
    ...extra,
  });
  const proxyWith = (f: AuthFilter, authPort = authz.port, extra: Partial<Route> = {}) =>
    servingConfig(port =>
      simpleConfig(
        port,
        [{ routeId: "app", match: prefix("/") }],
        [route("app", ["app"], { filters: [f], ...extra })],
        [cluster("app", [backend.port]), cluster("authz", [authPort], { protocol: "grpc" })],
      ),
    );

  it("lets an allowed request through with the service's header, query and response-header changes", async () => {
    const { port, px } = await proxyWith(filter());
    const r = await get(port, "/orders?secret=s&page=2", {
      headers: {
        authorization: "Bearer good",
        "x-auth-user": "forged",
        "x-remove-me": "1",
        "x-request-id": "req-7",
      },
    });
    expect(r.status).to.equal(200);
    expect(r.headers["x-auth-checked"]).to.equal("yes");
    const seen = r.json<EchoBody>();
    expect(seen.headers["x-auth-user"]).to.equal("alice"); // set over the client's
    expect(seen.headers["x-remove-me"]).to.equal(undefined);
    expect(seen.url).to.equal("/orders?page=2&trace=1");

    // what the service was told: every header (pseudo-headers too), peers, method, path, host
    const http = authz.checks[0]!.attributes.request.http;
    expect(http.method).to.equal("GET");
    expect(http.path).to.equal("/orders?secret=s&page=2");
    expect(http.host).to.equal("example.com");
    expect(http.scheme).to.equal("http");
    expect(http.protocol).to.equal("HTTP/1.1");
    expect(http.id).to.equal("req-7");
    expect(http.headers).to.include({
      authorization: "Bearer good",
      "x-remove-me": "1",
      ":authority": "example.com",
      ":method": "GET",
      ":path": "/orders?secret=s&page=2",
    });
    const source = authz.checks[0]!.attributes.source?.address?.socketAddress;
    expect(source?.address).to.equal("127.0.0.1");
    expect(source?.portValue).to.be.a("number");
    expect(authz.checks[0]!.attributes.destination?.address?.socketAddress?.portValue).to.equal(
      port,
    );
    expect(Date.parse(authz.checks[0]!.attributes.request.time!)).to.be.closeTo(Date.now(), 60_000);
    await px.close(100);
  });

  it("answers a denial with the service's status, headers and body; with signIn a 401 becomes the 302", async () => {
    const { port, px } = await proxyWith(filter());
    const hits = backend.hits;
    const denied = await get(port, "/", { headers: { authorization: "Bearer bad" } });
    expect(denied.status).to.equal(401);
    expect(denied.headers["www-authenticate"]).to.equal("Bearer");
    expect(denied.body).to.equal("who are you?");
    expect(backend.hits).to.equal(hits);
    await px.close(100);

    const signing = await proxyWith(filter(), authz.port, {
      signIn: { url: "https://login.example.com/start?rd=$escaped_request_uri" },
    });
    const redirected = await get(signing.port, "/cart?x=1");
    expect(redirected.status).to.equal(302);
    expect(redirected.headers.location).to.equal(
      "https://login.example.com/start?rd=%2Fcart%3Fx%3D1",
    );
    await signing.px.close(100);
  });

  it("sends only allowedHeaders when listed, and the body with forwardBody", async () => {
    const { port, px } = await proxyWith(
      filter({ allowedHeaders: ["authorization", "x-tenant"], forwardBodyBytes: 1024 }),
    );
    const r = await get(port, "/submit", {
      method: "POST",
      headers: { authorization: "Bearer good", "x-tenant": "acme", cookie: "c=1" },
      body: '{"amount": 3}',
    });
    expect(r.status).to.equal(200);
    expect(r.json<EchoBody>().body).to.equal('{"amount": 3}'); // replayed to the backend
    const http = authz.checks[0]!.attributes.request.http;
    expect(http.headers).to.deep.equal({ authorization: "Bearer good", "x-tenant": "acme" });
    expect([http.body, http.size]).to.deep.equal(['{"amount": 3}', "13"]);
    await px.close(100);
  });

  it("fails closed (403, counted) on a gRPC error, a deadline passed, or no service at all", async () => {
    const { port, px } = await proxyWith(filter({ timeoutMs: 300 }));
    const broken = await get(port, "/", { headers: { authorization: "Bearer broken" } });
    expect(broken.status).to.equal(403);
    expect(broken.body).to.include("gRPC status 13: policy engine failed");
    const slow = await get(port, "/", { headers: { authorization: "Bearer slow" } });
    expect(slow.status).to.equal(403);
    expect(slow.body).to.include("no answer within 300 ms");
    await px.close(100);

    const gone = await proxyWith(filter(), await freePort());
    const refused = await get(gone.port, "/", { headers: { authorization: "Bearer good" } });
    expect(refused.status).to.equal(403);
    const metrics = await gone.px.metrics.registry.getSingleMetricAsString(
      "rauta_external_auth_total",
    );
    expect(metrics).to.include('route="app",result="error"} 1');
    await gone.px.close(100);
  });

  it("fails closed on an answer that is not a CheckResponse", async () => {
    const server = http2.createServer();
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame(Buffer.from([0x0a, 0xff]))); // field 1, a length past the end
    });
    await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
    const { port, px } = await proxyWith(filter(), (server.address() as net.AddressInfo).port);
    const r = await get(port, "/", { headers: { authorization: "Bearer good" } });
    expect(r.status).to.equal(403);
    expect(r.body).to.include("truncated");
    await px.close(100);
    await new Promise(r2 => server.close(r2));
  });
});

describe("ext_authz messages", () => {
  it("decodes header actions the way the API documents them: append false or absent sets, true adds", () => {
    // CheckResponse { status {code 0}, ok_response { headers [ {header {k,v}}, {header, append {true}},
    // {header, append_action 1} ] } } built by hand
    const str = (field: number, s: string) => {
      const b = Buffer.from(s);
      return Buffer.concat([Buffer.from([(field << 3) | 2, b.length]), b]);
    };
    const msg = (field: number, ...parts: Buffer[]) => {
      const b = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([(field << 3) | 2, b.length]), b]);
    };
    const header = (k: string, v: string) => msg(1, str(1, k), str(2, v));
    const ok = msg(
      3,
      msg(2, header("X-A", "1")),
      msg(2, header("x-b", "2"), msg(2, Buffer.from([0x08, 0x01]))),
      msg(2, header("x-c", "3"), Buffer.from([0x18, 0x01])),
      str(5, "X-Gone"),
    );
    const verdict = decodeCheckResponse(Buffer.concat([msg(1), ok]));
    expect(verdict.allowed).to.equal(true);
    if (!verdict.allowed) return;
    expect(verdict.headers).to.deep.equal([
      { name: "x-a", value: "1", action: "set" },
      { name: "x-b", value: "2", action: "add" },
      { name: "x-c", value: "3", action: "add-if-absent" },
    ]);
    expect(verdict.headersToRemove).to.deep.equal(["x-gone"]);
    // a denial without an HTTP status: the step's default (403) applies
    const denied = decodeCheckResponse(
      Buffer.concat([msg(1, Buffer.from([0x08, 0x07]), str(2, "nope"))]),
    );
    expect(denied).to.include({ allowed: false, code: 7, message: "nope", httpStatus: 0 });
  });

  it("writes a body that is not text as raw_body", () => {
    const bytes = encodeCheckRequest({
      source: { address: "127.0.0.1", port: 1 },
      destination: { address: "127.0.0.1", port: 2 },
      timeMs: 0,
      http: {
        id: "",
        method: "POST",
        headers: [],
        path: "/",
        host: "h",
        scheme: "http",
        protocol: "HTTP/1.1",
        body: Uint8Array.from([0xff, 0xfe]),
      },
    });
    // raw_body is field 12 (tag 0x62) of HttpRequest; body (11, tag 0x5a) is not written
    const b = Buffer.from(bytes);
    expect(b.includes(Buffer.from([0x62, 0x02, 0xff, 0xfe]))).to.equal(true);
    expect(b.includes(Buffer.from([0x5a, 0x02]))).to.equal(false);
  });
});
