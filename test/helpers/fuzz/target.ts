// The system under test for the RFC and fuzz specs: a real Proxy (in this process) with a
// plain-text listener (HTTP/1.1 + h2c) and, when asked, an HTTPS listener (ALPN h2/http1.1, SNI),
// in front of backends that record exactly what reached them. Everything binds 127.0.0.1.
//
// Virtual hosts on both listeners:
//   a.example    → backend "a"        (absolute-form routing)
//   raw.test     → a raw TCP backend   (hand-written, possibly broken, responses)
//   canary.test  → backend "canary"   (the valid requests sent while an attack runs)
//   *            → backend "main"
import http from "node:http";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runInNewContext } from "node:vm";
import v8 from "node:v8";
import {
  config,
  listener,
  prefix,
  route,
  cluster,
  testProxy,
  freePort,
} from "../../unit/proxy/helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import type { ServerLimits } from "../../../proxy/server/listeners.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { TlsKeyPair } from "../../../proxy/tls/secrets.ts";
import { selfSigned } from "../certs.ts";

export interface Recorded {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RecordingBackend {
  name: string;
  port: number;
  /** requests received completely (body included), in the order they ended */
  requests: Recorded[];
  /** requests whose head arrived (complete or not) */
  started: number;
  /** requests being received or answered right now */
  active: number;
  /** requests its own parser refused: the gateway sent something that is not HTTP */
  clientErrors: number;
  /** what its parser said about the last of them */
  lastClientError: string;
  close(): Promise<void>;
}

/** A backend that records each request and answers 200 with a small fixed body. */
export async function recordingBackend(
  name: string,
  answer?: (req: Recorded, res: http.ServerResponse) => boolean,
): Promise<RecordingBackend> {
  const b: RecordingBackend = {
    name,
    port: 0,
    requests: [],
    started: 0,
    active: 0,
    clientErrors: 0,
    lastClientError: "",
    close: async () => {},
  };
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    b.started++;
    b.active++;
    res.once("close", () => b.active--);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rec: Recorded = {
        method: req.method ?? "",
        url: req.url ?? "",
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      b.requests.push(rec);
      if (answer?.(rec, res)) return;
      const body = `${name} ok\n`;
      res.writeHead(200, {
        "content-type": "text/plain",
        "content-length": Buffer.byteLength(body),
        "x-backend": name,
      });
      res.end(body);
    });
    req.on("error", () => {});
  });
  server.on("clientError", (err: Error & { code?: string }, socket: net.Socket) => {
    // a connection the gateway cut is not a parse error
    if (err.code !== "ECONNRESET" && err.code !== "HPE_INVALID_EOF_STATE") {
      b.clientErrors++;
      const raw = (err as { rawPacket?: Buffer }).rawPacket;
      b.lastClientError = `${err.code ?? err.message}: ${JSON.stringify(raw?.toString("latin1").slice(0, 300) ?? "")}`;
    }
    socket.destroy();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
  b.port = (server.address() as net.AddressInfo).port;
  b.close = () =>
    new Promise<void>(r => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return b;
}

export interface RawBackend {
  port: number;
  /** what the next connection is answered with, once a request head has arrived */
  reply: string | Buffer;
  /** request heads received */
  heads: string[];
  close(): Promise<void>;
}

/** A TCP backend that answers every request head with `reply`, verbatim, then closes. */
export async function rawBackend(): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const b: RawBackend = {
    port: 0,
    reply: "HTTP/1.1 204 No Content\r\n\r\n",
    heads: [],
    close: async () => {},
  };
  const server = net.createServer(socket => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      b.heads.push(buf.subarray(0, end).toString("latin1"));
      buf = Buffer.alloc(0);
      socket.end(b.reply);
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
  b.port = (server.address() as net.AddressInfo).port;
  b.close = () =>
    new Promise<void>(r => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return b;
}

export const FUZZ_LIMITS: Partial<ServerLimits> = {
  headersTimeoutMs: 400,
  requestTimeoutMs: 1200,
  connectionsCheckingIntervalMs: 100,
  maxHeaderSize: 8192,
  keepAliveTimeoutMs: 5000,
  idleTimeoutMs: 5000,
};

export interface Target {
  proxy: Proxy;
  /** plain-text listener (HTTP/1.1 and h2c) */
  port: number;
  /** HTTPS listener, when started with tls */
  tlsPort: number;
  main: RecordingBackend;
  a: RecordingBackend;
  canary: RecordingBackend;
  raw: RawBackend;
  /** CN of the certificates: "a.example" for a.example, "default.test" for every other name */
  certs: { a: TlsKeyPair; fallback: TlsKeyPair } | null;
  /** errors contained so far (rauta_contained_errors_total): a fuzz case must never add one */
  contained(): Promise<number>;
  /** requests of the proxy still in flight (0 when idle) */
  inflight(): number;
  /** waits (bounded) until no request is in flight in the proxy or the backends */
  settle(maxMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTarget(
  o: { tls?: boolean; limits?: Partial<ServerLimits> } = {},
): Promise<Target> {
  const main = await recordingBackend("main");
  const a = await recordingBackend("a");
  const canary = await recordingBackend("canary");
  const raw = await rawBackend();
  const port = await freePort();
  const tlsPort = o.tls ? await freePort() : 0;
  let certs: Target["certs"] = null;
  let dir: string | null = null;
  let secrets: StaticSecretProvider | undefined;
  if (o.tls) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-fuzz-"));
    certs = {
      a: selfSigned(dir, "a.example", "DNS:a.example"),
      fallback: selfSigned(dir, "default.test", "DNS:default.test"),
    };
    secrets = new StaticSecretProvider(
      new Map([
        ["default/a", certs.a],
        ["default/fallback", certs.fallback],
      ]),
    );
  }
  const proxy = testProxy({
    limits: { ...FUZZ_LIMITS, ...o.limits },
    ...(secrets ? { secrets } : {}),
  });
  const vhosts = [
    { hostname: "a.example", routes: [{ routeId: "a", match: prefix("/") }] },
    { hostname: "raw.test", routes: [{ routeId: "raw", match: prefix("/") }] },
    { hostname: "canary.test", routes: [{ routeId: "canary", match: prefix("/") }] },
    { hostname: "*", routes: [{ routeId: "main", match: prefix("/") }] },
  ];
  const listeners = [listener(port, vhosts)];
  if (o.tls)
    listeners.push(
      listener(tlsPort, vhosts, {
        protocol: "HTTPS",
        tls: {
          certificates: [
            { secretRef: { namespace: "default", name: "a" }, hostnames: ["a.example"] },
            { secretRef: { namespace: "default", name: "fallback" }, hostnames: ["*"] },
          ],
        },
      }),
    );
  const res = await proxy.apply(
    config({
      listeners,
      routes: [
        route("main", ["main"]),
        route("a", ["a"]),
        route("raw", ["raw"]),
        route("canary", ["canary"]),
      ],
      clusters: [
        cluster("main", [main.port]),
        cluster("a", [a.port]),
        cluster("raw", [raw.port]),
        cluster("canary", [canary.port]),
      ],
    }),
  );
  if (!res.ok) throw new Error(`fuzz target config refused: ${res.problems.join("; ")}`);
  const inflight = () => {
    const g = proxy.current;
    return g === null ? 0 : g.inflight;
  };
  return {
    proxy,
    port,
    tlsPort,
    main,
    a,
    canary,
    raw,
    certs,
    contained: async () =>
      (await proxy.metrics.contained.get()).values.reduce((n, v) => n + v.value, 0),
    inflight,
    settle: async (maxMs = 300) => {
      const until = Date.now() + maxMs;
      while (Date.now() < until && (inflight() > 0 || main.active > 0 || a.active > 0))
        await new Promise(r => setTimeout(r, 5));
    },
    close: async () => {
      await proxy.close(50);
      await Promise.all([main.close(), a.close(), canary.close(), raw.close()]);
      if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let gcFn: (() => void) | null | undefined;

/** Full garbage collection if this process can be told to (--expose-gc, or via V8 flags). */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      gcFn = runInNewContext("gc") as () => void;
    } catch {
      gcFn = null;
    }
  }
  if (gcFn === null) return false;
  gcFn();
  return true;
}

export interface MemorySample {
  heapUsed: number;
  rss: number;
}

export function memory(): MemorySample {
  collectGarbage();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

export const MB = 1024 * 1024;
