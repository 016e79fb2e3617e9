// TLS termination with SNI among several certificates, ALPN (h2 and http/1.1), certificate
// rotation without restart, h2c prior knowledge downstream, and h2c upstream.
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import https from "node:https";
import http2 from "node:http2";
import net from "node:net";
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
  startWsBackend,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { TlsKeyPair } from "../../../proxy/tls/secrets.ts";
import { selfSigned } from "../../helpers/certs.ts";

function peerCN(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      {
        host: "127.0.0.1",
        port,
        servername,
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      },
      () => {
        const cn = s.getPeerCertificate().subject?.CN ?? "";
        s.end();
        resolve(Array.isArray(cn) ? cn.join(",") : cn);
      },
    );
    s.on("error", reject);
  });
}

function h2Get(
  authority: string,
  path: string,
  opts: http2.SecureClientSessionOptions = {},
): Promise<{ status: number; body: string; alpn: string | false | null | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authority, opts);
    session.on("error", reject);
    const req = session.request({ ":path": path, ":method": "GET" });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on("response", h => (status = Number(h[":status"])));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const alpn = (session.socket as tls.TLSSocket).alpnProtocol;
      session.close();
      resolve({ status, body: Buffer.concat(chunks).toString(), alpn });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("proxy: TLS, SNI, HTTP/2", function () {
  this.timeout(20_000);
  let dir: string, a: Echo, b: Echo;
  let certA: TlsKeyPair, certWild: TlsKeyPair, certDefault: TlsKeyPair, certA2: TlsKeyPair;
  let secrets: StaticSecretProvider, proxy: Proxy, tlsPort: number, plainPort: number;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-tls-"));
    certA = selfSigned(dir, "a.example.com", "DNS:a.example.com");
    certA2 = selfSigned(dir, "a-rotated.example.com", "DNS:a.example.com");
    certWild = selfSigned(dir, "wild.example.com", "DNS:*.wild.example.com");
    certDefault = selfSigned(dir, "default.example.com", "DNS:default.example.com");
    a = await startEcho("a");
    b = await startEcho("b");
    secrets = new StaticSecretProvider(
      new Map([
        ["default/a", certA],
        ["default/wild", certWild],
        ["default/default", certDefault],
      ]),
    );
    tlsPort = await freePort();
    plainPort = await freePort();
    proxy = testProxy({ secrets });
    const res = await proxy.apply(
      config({
        listeners: [
          listener(
            tlsPort,
            [
              { hostname: "a.example.com", routes: [{ routeId: "a", match: prefix("/") }] },
              { hostname: "*", routes: [{ routeId: "b", match: prefix("/") }] },
            ],
            {
              protocol: "HTTPS",
              tls: {
                certificates: [
                  { secretRef: { namespace: "default", name: "a" }, hostnames: ["a.example.com"] },
                  {
                    secretRef: { namespace: "default", name: "wild" },
                    hostnames: ["*.wild.example.com"],
                  },
                  { secretRef: { namespace: "default", name: "default" }, hostnames: ["*"] },
                ],
              },
            },
          ),
          listener(plainPort, [{ hostname: "*", routes: [{ routeId: "a", match: prefix("/") }] }]),
        ],
        routes: [route("a", ["a"]), route("b", ["b"])],
        clusters: [cluster("a", [a.port]), cluster("b", [b.port])],
      }),
    );
    expect(res.ok, res.problems.join()).to.equal(true);
    expect(res.problems).to.deep.equal([]);
  });

  after(async () => {
    await proxy.close(100);
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("selects the certificate by SNI: exact, wildcard, default", async () => {
    expect(await peerCN(tlsPort, "a.example.com")).to.equal("a.example.com");
    expect(await peerCN(tlsPort, "x.wild.example.com")).to.equal("wild.example.com");
    expect(await peerCN(tlsPort, "unknown.example.org")).to.equal("default.example.com");
  });

  it("serves HTTP/1.1 over TLS (ALPN http/1.1) and routes by Host", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: "127.0.0.1",
            port: tlsPort,
            path: "/t",
            servername: "a.example.com",
            headers: { host: "a.example.com" },
            rejectUnauthorized: false,
            agent: false,
          },
          res => {
            let s = "";
            res.on("data", d => (s += d));
            res.on("end", () => resolve(s));
          },
        )
        .on("error", reject);
    });
    const j = JSON.parse(body);
    expect(j.backend).to.equal("a");
    expect(j.headers["x-forwarded-proto"]).to.equal("https");
  });

  it("serves HTTP/2 over TLS (ALPN h2) and routes by :authority", async () => {
    const r = await h2Get(`https://a.example.com:${tlsPort}`, "/h2?x=1", {
      rejectUnauthorized: false,
      servername: "a.example.com",
      createConnection: () =>
        tls.connect({
          host: "127.0.0.1",
          port: tlsPort,
          servername: "a.example.com",
          rejectUnauthorized: false,
          ALPNProtocols: ["h2"],
        }),
    });
    expect(r.alpn).to.equal("h2");
    expect(r.status).to.equal(200);
    const j = JSON.parse(r.body);
    expect(j.backend).to.equal("a");
    expect(j.url).to.equal("/h2?x=1");
    expect(j.headers.host).to.equal(`a.example.com:${tlsPort}`);
  });

  it("answers 421 to a request for a host another listener serves than the one its connection's SNI chose (RFC 9110 §15.5.20)", async () => {
    const over = (sni: string, authority: string) =>
      h2Get(`https://${authority}:${tlsPort}`, "/misdirected", {
        rejectUnauthorized: false,
        createConnection: () =>
          tls.connect({
            host: "127.0.0.1",
            port: tlsPort,
            servername: sni,
            rejectUnauthorized: false,
            ALPNProtocols: ["h2"],
          }),
      });
    // a.example.com has a listener of its own; unknown.example.org falls to the one without hostname
    const misdirected = await over("a.example.com", "unknown.example.org");
    expect(misdirected.status).to.equal(421);
    expect(misdirected.body).to.contain(
      "TLS server name a.example.com is not for host unknown.example.org",
    );
    expect((await over("unknown.example.org", "a.example.com")).status).to.equal(421);
    expect((await over("x.wild.example.com", "a.example.com")).status).to.equal(421);
    // both names under the same listener: served
    const same = await over("unknown.example.org", "other.example.net");
    expect(same.status).to.equal(200);
    expect(JSON.parse(same.body).backend).to.equal("b");
    expect((await over("a.example.com", "A.example.com")).status).to.equal(200);
    // HTTP/1.1 over TLS: the same rule for Host
    const status = await new Promise<number>((resolve, reject) => {
      https
        .get(
          {
            host: "127.0.0.1",
            port: tlsPort,
            path: "/misdirected",
            servername: "a.example.com",
            headers: { host: "elsewhere.example.org" },
            rejectUnauthorized: false,
            agent: false,
          },
          res => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on("error", reject);
    });
    expect(status).to.equal(421);
  });

  it("serves h2c (HTTP/2 prior knowledge) and HTTP/1.1 on the same plain-text port", async () => {
    const r = await h2Get(`http://127.0.0.1:${plainPort}`, "/h2c");
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.body).backend).to.equal("a");
    expect((await get(plainPort, "/h1")).json().backend).to.equal("a");
  });

  it("streams an HTTP/2 request body to an HTTP/1.1 upstream", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${plainPort}`);
      session.on("error", reject);
      const req = session.request({
        ":path": "/upload",
        ":method": "POST",
        "content-type": "text/plain",
      });
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        session.close();
        resolve(Buffer.concat(chunks).toString());
      });
      req.write("hello ");
      req.end("h2");
    });
    const j = JSON.parse(body);
    expect(j.method).to.equal("POST");
    expect(j.body).to.equal("hello h2");
    // split cookies arrive as one Cookie header on HTTP/1.1
    const withCookies = await new Promise<string>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${plainPort}`);
      session.on("error", reject);
      const req = session.request({ ":path": "/c", cookie: ["a=1", "b=2"] });
      let s = "";
      req.on("data", (c: Buffer) => (s += c));
      req.on("end", () => {
        session.close();
        resolve(s);
      });
      req.end();
    });
    const raw = JSON.parse(withCookies).rawHeaders as string[];
    expect(raw.filter(h => h.toLowerCase() === "cookie")).to.have.length(1);
    expect(JSON.parse(withCookies).headers.cookie).to.equal("a=1; b=2");
  });

  it("passes WebSocket upgrades through over TLS (wss, ALPN http/1.1)", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy({ secrets });
    await px.apply(
      config({
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "ws", match: prefix("/") }] }], {
            protocol: "HTTPS",
            tls: {
              certificates: [
                { secretRef: { namespace: "default", name: "default" }, hostnames: ["*"] },
              ],
            },
          }),
        ],
        routes: [route("ws", ["ws"])],
        clusters: [cluster("ws", [ws.port], { protocol: "ws" })],
      }),
    );
    const out = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        {
          host: "127.0.0.1",
          port,
          servername: "chat.example.com",
          rejectUnauthorized: false,
          ALPNProtocols: ["http/1.1"],
        },
        () => {
          s.write(
            "GET /chat HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          );
        },
      );
      let buf = "";
      s.on("data", d => {
        buf += d;
        if (buf.includes("\r\n\r\n") && !buf.includes("echo-me")) s.write("echo-me");
        if (buf.endsWith("echo-me")) {
          s.destroy();
          resolve(buf);
        }
      });
      s.on("error", reject);
    });
    expect(out).to.match(/^HTTP\/1\.1 101/);
    expect(out.endsWith("echo-me")).to.equal(true);
    await px.close(100);
    await ws.close();
  });

  it("rotates a certificate without restart", async () => {
    const before = await peerCN(tlsPort, "a.example.com");
    secrets.replace(
      new Map([
        ["default/a", certA2],
        ["default/wild", certWild],
        ["default/default", certDefault],
      ]),
    );
    expect(before).to.equal("a.example.com");
    expect(await peerCN(tlsPort, "a.example.com")).to.equal("a-rotated.example.com");
  });

  it("speaks h2c to a backend whose protocol is h2c", async () => {
    const backend = http2.createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ backend: "h2c", httpVersion: req.httpVersion, path: req.url }));
    });
    await new Promise<void>(r => backend.listen(0, "127.0.0.1", () => r()));
    const bport = (backend.address() as net.AddressInfo).port;
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      config({
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "g", match: prefix("/") }] }]),
        ],
        routes: [route("g", ["g"])],
        clusters: [cluster("g", [bport], { protocol: "h2c" })],
      }),
    );
    const r = await get(port, "/grpc-ish");
    expect(r.status).to.equal(200);
    const j = r.json<{ backend: string; httpVersion: string; path: string }>();
    expect(j.httpVersion).to.equal("2.0");
    expect(j.path).to.equal("/grpc-ish");
    await px.close(100);
    await new Promise<void>(r => backend.close(() => r()));
  });
});
