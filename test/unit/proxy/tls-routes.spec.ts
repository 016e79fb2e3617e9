// TLS listeners (TLSRoutes) in the proxy: connections routed by the ClientHello's SNI before any
// handshake. Passthrough reaches the backend's own TLS (its certificate, the client's SNI);
// Terminate ends TLS at the gateway and sends plaintext; HTTPS on the same port still serves
// HTTP; names no route serves, hellos without SNI, malformed, oversized and slow hellos are
// refused; a backend that resets, a config swap under an open connection, and the counters.
import { expect } from "chai";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import https from "node:https";
import tls from "node:tls";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import type { CompiledConfig, StreamEntry } from "../../../proxy/config/schema.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { TlsKeyPair } from "../../../proxy/tls/secrets.ts";
import { makeCa } from "../../helpers/certs.ts";
import type { Ca } from "../../helpers/certs.ts";
import type { Echo } from "./helpers.ts";
import {
  cluster,
  config,
  freePort,
  listener,
  prefix,
  route,
  sleep,
  startEcho,
  testProxy,
} from "./helpers.ts";

interface Backend {
  port: number;
  /** server names the TLS backend saw, or "plain" for the TCP one */
  seen: string[];
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** Calls `each` with every newline-terminated line the socket receives. */
function onLines(socket: net.Socket | tls.TLSSocket, each: (line: string) => void) {
  let buf = "";
  socket.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) !== -1) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      each(line);
    }
  });
}

// Answers each line with "<name> <sni|plain> <line>"; "RESET" resets the connection.
function lineEcho(
  name: string,
  socket: net.Socket | tls.TLSSocket,
  seen: string[],
  reset: () => void,
) {
  const sni = socket instanceof tls.TLSSocket ? String(socket.servername) : "plain";
  seen.push(sni);
  socket.on("error", () => {});
  onLines(socket, line => {
    if (line === "RESET") reset();
    else socket.write(`${name} ${sni} ${line}\n`);
  });
}

async function startBackend(name: string, pair?: TlsKeyPair): Promise<Backend> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  // a TLS socket cannot send an RST itself: its TCP connection (the only one open) does
  const reset = () => {
    for (const raw of sockets) raw.resetAndDestroy();
  };
  const onSocket = (s: net.Socket | tls.TLSSocket) => lineEcho(name, s, seen, reset);
  const server = pair
    ? tls.createServer({ cert: pair.cert, key: pair.key }, onSocket)
    : net.createServer(onSocket);
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    sockets,
    close: () =>
      new Promise<void>(r => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Conn {
  socket: tls.TLSSocket;
  send(line: string): Promise<string>;
  peerCN: string;
}

function connect(port: number, servername: string | undefined, ca: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, servername, ca, ALPNProtocols: [] },
      () => {
        const waiting: Array<(line: string) => void> = [];
        onLines(socket, line => waiting.shift()?.(line));
        const cn = socket.getPeerCertificate().subject?.CN ?? "";
        resolve({
          socket,
          peerCN: Array.isArray(cn) ? cn.join(",") : cn,
          send: line =>
            new Promise(r => {
              waiting.push(r);
              socket.write(`${line}\n`);
            }),
        });
      },
    );
    socket.once("error", reject);
  });
}

/** How a raw connection ends after sending `bytes`: the bytes it got back, and when. */
function rawExchange(port: number, bytes: Buffer | null): Promise<{ got: Buffer; ms: number }> {
  return new Promise(resolve => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1", () => {
      if (bytes !== null) socket.write(bytes);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.on("close", () => resolve({ got: Buffer.concat(chunks), ms: Date.now() - started }));
  });
}

describe("proxy: TLS listeners (TLSRoute passthrough and terminate)", function () {
  this.timeout(20_000);
  let dir: string;
  let ca: Ca;
  let gatewayCa: Ca;
  let passthrough: Backend;
  let plain: Backend;
  let web: Echo;
  let px: Proxy;
  let port: number;

  const streams: StreamEntry[] = [
    { hostname: "db.example.com", mode: "Passthrough", routeId: "db" },
    { hostname: "term.example.com", mode: "Terminate", routeId: "term" },
    { hostname: "www.example.com", mode: "HTTP", routeId: null },
    { hostname: "*.example.com", mode: "Passthrough", routeId: null },
  ];
  const tlsConfig = (generation = 1, withDb = true, on = port): CompiledConfig =>
    config(
      {
        listeners: [
          listener(
            on,
            [{ hostname: "www.example.com", routes: [{ routeId: "web", match: prefix("/") }] }],
            {
              protocol: "HTTPS",
              tls: {
                certificates: [
                  {
                    secretRef: { namespace: "default", name: "term" },
                    hostnames: ["term.example.com"],
                  },
                  {
                    secretRef: { namespace: "default", name: "www" },
                    hostnames: ["www.example.com"],
                  },
                ],
              },
              streams: withDb ? streams : streams.filter(s => s.routeId !== "db"),
            },
          ),
        ],
        routes: [
          ...(withDb ? [route("db", ["db"])] : []),
          route("term", ["plain"]),
          route("web", ["web"]),
        ],
        clusters: [
          cluster("db", [passthrough.port], { protocol: "tcp" }),
          cluster("plain", [plain.port], { protocol: "tcp" }),
          cluster("web", [web.port]),
        ],
      },
      generation,
    );

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-tls-routes-"));
    ca = makeCa(dir, "backend-ca");
    gatewayCa = makeCa(dir, "gateway-ca");
    passthrough = await startBackend(
      "db",
      ca.issue("db.example.com", "DNS:db.example.com", "serverAuth"),
    );
    plain = await startBackend("plain");
    web = await startEcho("web");
    port = await freePort();
    const secrets = new StaticSecretProvider(
      new Map([
        ["default/term", gatewayCa.issue("term.example.com", "DNS:term.example.com", "serverAuth")],
        ["default/www", gatewayCa.issue("www.example.com", "DNS:www.example.com", "serverAuth")],
      ]),
    );
    px = testProxy({ secrets });
    const applied = await px.apply(tlsConfig());
    expect(applied.ok, applied.problems.join()).to.equal(true);
  });

  after(async () => {
    await px.close(100);
    await passthrough.close();
    await plain.close();
    await web.close();
  });

  it("passes TLS through to the backend: its certificate, the client's SNI, bytes both ways", async () => {
    const c = await connect(port, "db.example.com", ca.cert);
    expect(c.peerCN).to.equal("db.example.com");
    expect(await c.send("hello")).to.equal("db db.example.com hello");
    expect(await c.send("again")).to.equal("db db.example.com again");
    c.socket.end();
  });

  it("terminates TLS for a Terminate route and sends the plaintext to the backend", async () => {
    const c = await connect(port, "term.example.com", gatewayCa.cert);
    expect(c.peerCN).to.equal("term.example.com");
    expect(await c.send("secret")).to.equal("plain plain secret");
    c.socket.end();
  });

  it("serves HTTPS on the same port for the HTTPS listener's name", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: "127.0.0.1",
            port,
            path: "/x",
            servername: "www.example.com",
            ca: gatewayCa.cert,
            headers: { host: "www.example.com" },
          },
          res => {
            let b = "";
            res.on("data", d => (b += d));
            res.on("end", () => resolve(`${res.statusCode} ${b}`));
          },
        )
        .on("error", reject);
    });
    expect(body).to.match(/^200 /);
    expect(JSON.parse(body.slice(4)).backend).to.equal("web");
  });

  it("closes the connection for a name no route serves, and for a hello without SNI", async () => {
    for (const servername of ["other.example.com", undefined]) {
      let error: Error | null = null;
      try {
        await connect(port, servername, ca.cert);
      } catch (err) {
        error = err as Error;
      }
      expect(error?.message ?? "", String(servername)).to.match(
        /ECONNRESET|socket hang up|disconnected before secure TLS connection/i,
      );
    }
  });

  it("closes connections whose hello is not TLS, malformed, oversized or never completes", async () => {
    const http = await rawExchange(
      port,
      Buffer.from("GET / HTTP/1.1\r\nHost: db.example.com\r\n\r\n"),
    );
    expect(http.got.length).to.equal(0);
    // a handshake record that declares a 1 MiB ClientHello
    const huge = await rawExchange(port, Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0x10, 0x00, 0x00]));
    expect([...huge.got]).to.deep.equal([21, 3, 3, 0, 2, 2, 50]);
    // a truncated hello and silence: closed at the ClientHello timeout
    const slow = testProxy({ limits: { clientHelloTimeoutMs: 300 } });
    const slowPort = await freePort();
    expect((await slow.apply(tlsConfig(1, true, slowPort))).ok).to.equal(true);
    try {
      const stalled = await rawExchange(
        slowPort,
        Buffer.from([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]),
      );
      expect(stalled.ms).to.be.within(250, 3000);
      expect(stalled.got.length).to.equal(0);
    } finally {
      await slow.close(100);
    }
  });

  it("closes the client's connection when the backend resets", async () => {
    const c = await connect(port, "db.example.com", ca.cert);
    const closed = new Promise<void>(r => c.socket.once("close", () => r()));
    c.socket.on("error", () => {});
    c.socket.write("RESET\n");
    await closed;
  });

  it("keeps an open passthrough connection across a swap that keeps its route, and closes it when the route goes", async () => {
    const c = await connect(port, "db.example.com", ca.cert);
    expect(await c.send("one")).to.equal("db db.example.com one");
    expect((await px.apply(tlsConfig(2))).ok).to.equal(true);
    expect(await c.send("two")).to.equal("db db.example.com two");
    const closed = new Promise<void>(r => c.socket.once("close", () => r()));
    c.socket.on("error", () => {});
    expect((await px.apply(tlsConfig(3, false))).ok).to.equal(true);
    await closed;
    // and a new connection for the name is refused now: the wildcard entry has no route
    let refused = false;
    await connect(port, "db.example.com", ca.cert).catch(() => (refused = true));
    expect(refused).to.equal(true);
    expect((await px.apply(tlsConfig(4))).ok).to.equal(true);
  });

  it("counts connections and bytes by route", async () => {
    const c = await connect(port, "db.example.com", ca.cert);
    await c.send("count me");
    const closed = new Promise<void>(r => c.socket.once("close", () => r()));
    c.socket.end();
    await closed;
    await sleep(50);
    const m = px.metrics.registry;
    const conns = await m.getSingleMetricAsString("rauta_tcp_connections_total");
    expect(conns).to.match(/rauta_tcp_connections_total\{route="db",result="ok"\} [1-9]/);
    expect(conns).to.match(/rauta_tcp_connections_total\{route="none",result="no_route"\} [1-9]/);
    const bytes = await m.getSingleMetricAsString("rauta_tcp_bytes_total");
    expect(bytes).to.match(
      /rauta_tcp_bytes_total\{route="db",direction="client_to_backend"\} [1-9]/,
    );
    expect(bytes).to.match(
      /rauta_tcp_bytes_total\{route="db",direction="backend_to_client"\} [1-9]/,
    );
  });
});
