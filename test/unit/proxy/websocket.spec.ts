// HTTP/1.1 Upgrade (WebSocket) pass-through: handshake relayed, bytes tunnelled both ways, idle
// timeout, clean close when a config swap removes the route.
import { expect } from "chai";
import http from "node:http";
import net from "node:net";
import {
  freePort,
  simpleConfig,
  oneRouteConfig,
  prefix,
  route,
  cluster,
  testProxy,
  sleep,
  startWsBackend,
} from "./helpers.ts";

function openWs(
  port: number,
  path: string,
): Promise<{ socket: net.Socket; head: string; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let buf = "";
    let head = "";
    const closed = new Promise<void>(r => socket.on("close", () => r()));
    socket.on("error", () => {});
    socket.on("data", d => {
      buf += d.toString("latin1");
      if (!head) {
        const i = buf.indexOf("\r\n\r\n");
        if (i >= 0) {
          head = buf.slice(0, i);
          buf = buf.slice(i + 4);
          resolve({ socket, head, received: () => buf, closed });
        }
      }
    });
    socket.on("close", () => {
      if (!head) reject(new Error(`closed before handshake: ${buf}`));
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

describe("proxy: WebSocket / Upgrade pass-through", function () {
  this.timeout(15_000);

  it("relays the 101 handshake and tunnels bytes both ways", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "ws", match: prefix("/chat") }],
        [route("ws", ["ws"])],
        [cluster("ws", [ws.port], { protocol: "ws" })],
      ),
    );
    const c = await openWs(port, "/chat/room?x=1");
    expect(c.head).to.match(/^HTTP\/1\.1 101/);
    expect(c.head.toLowerCase()).to.contain("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=");
    expect(c.head.toLowerCase()).to.contain("x-path: /chat/room?x=1");
    c.socket.write("ping-1");
    await sleep(50);
    c.socket.write("ping-2");
    await sleep(50);
    expect(c.received()).to.equal("ping-1ping-2");
    c.socket.destroy();
    await px.close(100);
    await ws.close();
  });

  it("closes the tunnel cleanly when a config swap removes its route", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy();
    await px.apply(oneRouteConfig(port, cluster("ws", [ws.port])));
    const c = await openWs(port, "/live");
    expect(px.tunnels.size).to.equal(1);
    // a swap that keeps the route keeps the tunnel
    await px.apply(oneRouteConfig(port, cluster("ws", [ws.port]), {}, 2));
    c.socket.write("still-here");
    await sleep(50);
    expect(c.received()).to.equal("still-here");
    // a swap that removes it ends the tunnel with a FIN
    let ended = false;
    c.socket.on("end", () => (ended = true));
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "other", match: prefix("/") }],
        [route("other", ["ws"])],
        [cluster("ws", [ws.port])],
        3,
      ),
    );
    await c.closed;
    expect(ended).to.equal(true);
    await sleep(50);
    expect(px.tunnels.size).to.equal(0);
    await px.close(100);
    await ws.close();
  });

  it("closes idle tunnels after the idle timeout", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy({ handler: { tunnelIdleTimeoutMs: 300 } });
    await px.apply(oneRouteConfig(port, cluster("ws", [ws.port])));
    const c = await openWs(port, "/idle");
    const t0 = Date.now();
    await c.closed;
    expect(Date.now() - t0).to.be.within(200, 3000);
    await px.close(100);
    await ws.close();
  });

  it("answers a non-101 upstream response to an upgrade request and closes", async () => {
    const server = http.createServer((_req, res) => res.end("no upgrade here"));
    await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
    const bport = (server.address() as net.AddressInfo).port;
    const port = await freePort();
    const px = testProxy();
    await px.apply(oneRouteConfig(port, cluster("ws", [bport])));
    const out = await new Promise<string>(resolve => {
      const s = net.connect(port, "127.0.0.1");
      let buf = "";
      s.on("data", d => (buf += d));
      s.on("close", () => resolve(buf));
      s.on("error", () => resolve(buf));
      s.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    });
    expect(out).to.match(/^HTTP\/1\.1 200/);
    expect(out).to.contain("no upgrade here");
    await px.close(100);
    await new Promise<void>(r => server.close(() => r()));
  });
});

describe("proxy: upgrades run the same request chain as plain requests", function () {
  this.timeout(15_000);

  it("rate-limits upgrades like plain requests (burst 1: the second upgrade gets 429)", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy();
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "ws", match: prefix("/chat") }],
        [
          route("ws", ["ws"], {
            rateLimit: { requests: 1, intervalMs: 1_000_000, burst: 1, key: { type: "ClientIP" } },
          }),
        ],
        [cluster("ws", [ws.port], { protocol: "ws" })],
      ),
    );
    try {
      const first = await openWs(port, "/chat");
      expect(first.head).to.match(/^HTTP\/1\.1 101 /);
      first.socket.destroy();
      const second = await openWs(port, "/chat");
      expect(second.head).to.match(/^HTTP\/1\.1 429 /);
      expect(second.head).to.match(/retry-after: 1/i);
    } finally {
      await px.close(100);
      await ws.close();
    }
  });

  it("refuses an upgrade with more headers than the limit (431)", async () => {
    const ws = await startWsBackend();
    const port = await freePort();
    const px = testProxy({ handler: { maxHeaderCount: 4 } });
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "ws", match: prefix("/chat") }],
        [route("ws", ["ws"])],
        [cluster("ws", [ws.port], { protocol: "ws" })],
      ),
    );
    try {
      const r = await openWs(port, "/chat");
      expect(r.head).to.match(/^HTTP\/1\.1 431 /);
    } finally {
      await px.close(100);
      await ws.close();
    }
  });
});
