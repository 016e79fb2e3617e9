// The PROXY protocol on a listener (ClientTrafficPolicy proxyProtocol): the header's source is the
// client for X-Forwarded-For and rate limits; a connection without a valid header is closed
// (unless optional); HTTPS after the header.
import { expect } from "chai";
import fs from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { parseProxyHeader } from "../../../proxy/server/proxy-protocol.ts";
import type { ClientSettings } from "../../../proxy/config/schema.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import { selfSigned } from "../../helpers/certs.ts";
import {
  cluster,
  config,
  freePort,
  listener,
  prefix,
  route,
  simpleConfig,
  startEcho,
  testProxy,
  servingConfig,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

const v1 = (src: string, family = "TCP4", dst = "10.0.0.1") =>
  `PROXY ${family} ${src} ${dst} 51234 443\r\n`;

function v2(family: 1 | 2, src: number[], command = 1): Buffer {
  const addrLen = family === 1 ? 12 : 36;
  const head = Buffer.from([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a,
    0x20 | command,
    (family << 4) | 1,
    0,
    addrLen,
  ]);
  const body = Buffer.alloc(addrLen);
  Buffer.from(src).copy(body, 0);
  return Buffer.concat([head, body]);
}

/** Sends `bytes` on a fresh connection and returns everything the proxy answers before closing. */
function exchange(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1");
    let out = "";
    c.on("data", d => (out += d.toString("latin1")));
    c.on("close", () => resolve(out));
    c.on("error", err =>
      (err as NodeJS.ErrnoException).code === "ECONNRESET" ? resolve(out) : reject(err),
    );
    c.write(bytes);
    // the server ends the connection (Connection: close, or a refused header)
    c.on("end", () => c.end());
  });
}

const request = (p = "/") => `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
const echoed = (answer: string) =>
  JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { headers: Record<string, string> };

describe("proxy: the PROXY protocol on a listener", function () {
  this.timeout(20_000);
  let echo: Echo;
  before(async () => {
    echo = await startEcho("a");
  });
  after(async () => {
    await echo.close();
  });

  describe("header parsing", () => {
    const parse = (s: string | Buffer, optional = false) =>
      parseProxyHeader(typeof s === "string" ? Buffer.from(s) : s, optional);

    it("reads v1 TCP4, TCP6 and UNKNOWN headers, and waits for the rest of one", () => {
      expect(parse(v1("203.0.113.9"))).to.deep.equal({
        kind: "header",
        source: "203.0.113.9",
        length: v1("203.0.113.9").length,
      });
      expect(parse(v1("2001:db8::7", "TCP6", "2001:db8::1"))).to.include({ source: "2001:db8::7" });
      expect(parse("PROXY UNKNOWN\r\n")).to.include({ kind: "header", source: null });
      expect(parse("PROXY TCP4 203.0.113.9 10.0")).to.deep.equal({ kind: "incomplete" });
      expect(parse("PRO")).to.deep.equal({ kind: "incomplete" });
    });

    it("refuses malformed v1 headers", () => {
      for (const bad of [
        "PROXY TCP4 203.0.113.9 10.0.0.1 51234\r\n",
        "PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 70000 443\r\n",
        "PROXY UDP4 203.0.113.9 10.0.0.1 1 2\r\n",
        `PROXY TCP4 ${"1".repeat(120)}`,
      ])
        expect(parse(bad).kind, bad).to.equal("invalid");
    });

    it("reads v2 IPv4, IPv6 and IPv4-mapped sources, and LOCAL as no source", () => {
      expect(parse(v2(1, [198, 51, 100, 4]))).to.deep.equal({
        kind: "header",
        source: "198.51.100.4",
        length: 28,
      });
      const ipv6 = [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), 0x42];
      expect(parse(v2(2, ipv6))).to.include({ source: "2001:db8::42" });
      const mapped = [...Array<number>(10).fill(0), 0xff, 0xff, 192, 0, 2, 1];
      expect(parse(v2(2, mapped))).to.include({ source: "192.0.2.1" });
      expect(parse(v2(1, [1, 2, 3, 4], 0))).to.include({ kind: "header", source: null });
      expect(parse(v2(1, [1, 2, 3, 4]).subarray(0, 20))).to.deep.equal({ kind: "incomplete" });
      const wrongVersion = v2(1, [1, 2, 3, 4]);
      wrongVersion[12] = 0x11;
      expect(parse(wrongVersion).kind).to.equal("invalid");
    });

    it("takes other bytes for the connection's own when optional, and refuses them otherwise", () => {
      expect(parse("GET / HTTP/1.1\r\n", true)).to.deep.equal({ kind: "none" });
      expect(parse("GET / HTTP/1.1\r\n").kind).to.equal("invalid");
    });
  });

  const configWith = (port: number, client: ClientSettings, generation = 1) =>
    simpleConfig(
      port,
      [{ routeId: "r", match: prefix("/") }],
      [
        route("r", ["a"], {
          rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 1, key: { type: "ClientIP" } },
        }),
      ],
      [cluster("a", [echo.port])],
      generation,
      { client },
    );

  it("takes the header's source for the client: X-Forwarded-For and per-client rate limits", async () => {
    const { port, px } = await servingConfig(port =>
      configWith(port, { proxyProtocol: { optional: false } }),
    );
    const first = await exchange(port, v1("203.0.113.9") + request());
    expect(first).to.match(/^HTTP\/1\.1 200/);
    expect(echoed(first).headers["x-forwarded-for"]).to.equal("203.0.113.9");
    // the same client again: its own bucket is empty; another client has one of its own
    expect(await exchange(port, v1("203.0.113.9") + request())).to.match(/^HTTP\/1\.1 429/);
    const v2client = Buffer.concat([v2(1, [198, 51, 100, 4]), Buffer.from(request())]);
    const other = await exchange(port, v2client);
    expect(echoed(other).headers["x-forwarded-for"]).to.equal("198.51.100.4");
    await px.close(100);
  });

  it("reads the header on an HTTP/1.1-only listener, and before an h2c connection's preface", async () => {
    const { port, px: h1only } = await servingConfig(
      port => configWith(port, { proxyProtocol: { optional: false } }),
      { limits: { h2c: false } },
    );
    const a = await exchange(port, v1("203.0.113.20") + request());
    expect(echoed(a).headers["x-forwarded-for"]).to.equal("203.0.113.20");
    expect(await exchange(port, request())).to.equal("");
    await h1only.close(100);

    const { port: port2, px } = await servingConfig(port =>
      configWith(port, { proxyProtocol: { optional: false } }),
    );
    const session = http2.connect(`http://127.0.0.1:${port2}`, {
      createConnection: () => {
        const s = net.connect(port2, "127.0.0.1");
        s.write(v1("203.0.113.21"));
        return s;
      },
    });
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":path": "/" });
      let out = "";
      req.on("data", (d: Buffer) => (out += d.toString()));
      req.on("end", () => resolve(out));
      req.on("error", reject);
    });
    session.close();
    expect(
      (JSON.parse(body) as { headers: Record<string, string> }).headers["x-forwarded-for"],
    ).to.equal("203.0.113.21");
    await px.close(100);
  });

  it("closes a connection without a valid header, counting it, and serves LOCAL ones as their peer", async () => {
    const { port, px } = await servingConfig(port =>
      configWith(port, { proxyProtocol: { optional: false } }),
    );
    expect(await exchange(port, request())).to.equal("");
    expect(await exchange(port, "PROXY TCP4 nonsense\r\n" + request())).to.equal("");
    const local = await exchange(
      port,
      Buffer.concat([v2(1, [0, 0, 0, 0], 0), Buffer.from(request())]),
    );
    expect(echoed(local).headers["x-forwarded-for"]).to.equal("127.0.0.1");
    const text = await px.metrics.registry.metrics();
    expect(text).to.include('rauta_proxy_protocol_errors_total{reason="invalid"} 2');
    await px.close(100);
  });

  it("serves connections without a header when optional", async () => {
    const { port, px } = await servingConfig(port =>
      configWith(port, { proxyProtocol: { optional: true } }),
    );
    const plain = await exchange(port, request());
    expect(echoed(plain).headers["x-forwarded-for"]).to.equal("127.0.0.1");
    const proxied = await exchange(port, v1("203.0.113.10") + request());
    expect(echoed(proxied).headers["x-forwarded-for"]).to.equal("203.0.113.10");
    await px.close(100);
  });

  it("binds the port again when the setting changes", async () => {
    const { port, px } = await servingConfig(port => configWith(port, {}));
    expect(await exchange(port, request())).to.match(/^HTTP\/1\.1 200/);
    await px.apply(configWith(port, { proxyProtocol: { optional: false } }, 2));
    expect(await exchange(port, request())).to.equal("");
    expect(await exchange(port, v1("203.0.113.11") + request())).to.match(/^HTTP\/1\.1 200/);
    await px.close(100);
  });

  it("reads the header before the TLS handshake of an HTTPS listener", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-pp-"));
    const pair = selfSigned(dir, "pp.example.com", "DNS:pp.example.com");
    const port = await freePort();
    const px = testProxy({ secrets: new StaticSecretProvider(new Map([["default/pp", pair]])) });
    const res = await px.apply(
      config({
        listeners: [
          listener(port, [{ hostname: "*", routes: [{ routeId: "r", match: prefix("/") }] }], {
            protocol: "HTTPS",
            tls: {
              certificates: [{ secretRef: { namespace: "default", name: "pp" }, hostnames: ["*"] }],
            },
            client: { proxyProtocol: { optional: false } },
          }),
        ],
        routes: [route("r", ["a"])],
        clusters: [cluster("a", [echo.port])],
      }),
    );
    expect(res.ok, res.problems.join()).to.equal(true);
    const answer = await new Promise<string>((resolve, reject) => {
      const raw = net.connect(port, "127.0.0.1", () => {
        raw.write(v1("203.0.113.12"));
        const t = tls.connect({ socket: raw, servername: "pp.example.com", ca: pair.cert }, () =>
          t.write(request()),
        );
        let out = "";
        t.on("data", d => (out += d.toString()));
        t.on("end", () => {
          t.end();
          resolve(out);
        });
        t.on("error", reject);
      });
      raw.on("error", reject);
    });
    expect(echoed(answer).headers["x-forwarded-for"]).to.equal("203.0.113.12");
    await px.close(100);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reads the header before the ClientHello of a TLS passthrough listener, and closes a connection without one", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-pp-"));
    const pair = selfSigned(dir, "db.example.com", "DNS:db.example.com");
    // the passthrough backend terminates TLS itself and echoes what it gets
    const backend = tls.createServer({ cert: pair.cert, key: pair.key }, s =>
      s.on("data", d => s.write(`db ${d.toString()}`)),
    );
    await new Promise<void>(r => backend.listen(0, "127.0.0.1", r));
    const port = await freePort();
    const px = testProxy();
    const res = await px.apply(
      config({
        listeners: [
          listener(port, [], {
            protocol: "TLS",
            streams: [{ hostname: "db.example.com", mode: "Passthrough", routeId: "db" }],
            client: { proxyProtocol: { optional: false } },
          }),
        ],
        routes: [route("db", ["db"])],
        clusters: [
          cluster("db", [(backend.address() as net.AddressInfo).port], { protocol: "tcp" }),
        ],
      }),
    );
    expect(res.ok, res.problems.join()).to.equal(true);
    const answer = await new Promise<string>((resolve, reject) => {
      const raw = net.connect(port, "127.0.0.1", () => {
        raw.write(v1("203.0.113.13"));
        const t = tls.connect({ socket: raw, servername: "db.example.com", ca: pair.cert }, () =>
          t.write("hello"),
        );
        t.once("data", d => {
          resolve(d.toString());
          t.destroy();
        });
        t.on("error", reject);
      });
      raw.on("error", reject);
    });
    expect(answer).to.equal("db hello");
    expect(await exchange(port, "\x16\x03\x01 not a PROXY header")).to.equal("");
    const m = await px.metrics.registry.getSingleMetricAsString(
      "rauta_proxy_protocol_errors_total",
    );
    expect(m).to.contain('reason="invalid"} 1');
    await px.close(100);
    await new Promise(r => backend.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
