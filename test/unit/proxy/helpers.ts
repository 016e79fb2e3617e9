// Test helpers for the proxy suites: echo backends, config builders and a small HTTP client, all
// on 127.0.0.1 with real sockets.
import http from "node:http";
import net from "node:net";
import crypto from "node:crypto";
import { sealConfig } from "../../../proxy/config/hash.ts";
import type {
  CompiledConfig,
  CompiledConfigBody,
  Route,
  Cluster,
  Listener,
  RouteMatch,
  Filter,
} from "../../../proxy/config/schema.ts";
import { Proxy } from "../../../proxy/runtime/proxy.ts";
import { validateConfig } from "../../../proxy/config/load.ts";
import type { ApplyResult, ProxyOptions } from "../../../proxy/runtime/proxy.ts";
import { silentLogger } from "../../../proxy/observability/logger.ts";
import { freePort } from "../../helpers/net.ts";
export { freePort };

export interface Echo {
  name: string;
  port: number;
  server: http.Server;
  hits: number;
  close(): Promise<void>;
}

/** A backend that answers JSON describing the request it received. */
export async function startEcho(
  name: string,
  handler?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean,
): Promise<Echo> {
  const echo: Echo = {
    name,
    port: 0,
    server: null as unknown as http.Server,
    hits: 0,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    echo.hits++;
    if (handler?.(req, res)) return;
    const chunks: Buffer[] = [];
    req.on("data", c => chunks.push(c));
    req.on("end", () => {
      const body = JSON.stringify({
        backend: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, {
        "content-type": "application/json",
        "x-backend": name,
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
  echo.port = (server.address() as net.AddressInfo).port;
  echo.server = server;
  echo.close = () =>
    new Promise<void>(r => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return echo;
}

export function match(path: RouteMatch["path"], extra: Partial<RouteMatch> = {}): RouteMatch {
  return { path, headers: [], queryParams: [], ...extra };
}
export const prefix = (value: string, extra: Partial<RouteMatch> = {}) =>
  match({ type: "PathPrefix", value }, extra);
export const exact = (value: string, extra: Partial<RouteMatch> = {}) =>
  match({ type: "Exact", value }, extra);
export const regex = (value: string, extra: Partial<RouteMatch> = {}) =>
  match({ type: "RegularExpression", value }, extra);

export function route(
  id: string,
  clusterIds: Array<string | null | [string | null, number]>,
  extra: Partial<Route> = {},
): Route {
  return {
    id,
    source: { namespace: "default", name: id, rule: 0 },
    filters: [],
    backends: clusterIds.map(c =>
      Array.isArray(c)
        ? { clusterId: c[0], weight: c[1], filters: [] }
        : { clusterId: c, weight: 1, filters: [] },
    ),
    timeouts: {},
    ...extra,
  };
}

export function cluster(id: string, ports: number[], extra: Partial<Cluster> = {}): Cluster {
  return {
    id,
    service: { namespace: "default", name: id, port: 80 },
    protocol: "http1",
    lb: "round-robin",
    endpoints: ports.map(port => ({
      address: "127.0.0.1",
      port,
      ready: true,
      serving: true,
      terminating: false,
    })),
    ...extra,
  };
}

export function listener(
  port: number,
  vhosts: Listener["virtualHosts"],
  extra: Partial<Listener> = {},
): Listener {
  return {
    name: `127.0.0.1:${port}`,
    address: "127.0.0.1",
    port,
    protocol: "HTTP",
    sources: [{ namespace: "default", gateway: "gw", listener: "http" }],
    plugins: [],
    virtualHosts: vhosts,
    ...extra,
  };
}

export function config(body: Partial<CompiledConfigBody>, generation = 1): CompiledConfig {
  return sealConfig(
    {
      apiVersion: "rauta.io/v1alpha1",
      listeners: [],
      routes: [],
      clusters: [],
      plugins: [],
      ...body,
    } as CompiledConfigBody,
    generation,
  );
}

/** A config with one listener, one "*" virtual host, the given routes (entries in order). */
export function simpleConfig(
  port: number,
  entries: Array<{ routeId: string; match: RouteMatch }>,
  routes: Route[],
  clusters: Cluster[],
  generation = 1,
  listenerExtra: Partial<Listener> = {},
): CompiledConfig {
  return config(
    {
      listeners: [listener(port, [{ hostname: "*", routes: entries }], listenerExtra)],
      routes,
      clusters,
    },
    generation,
  );
}

/** The most common test config: one route "r" on "/" of a listener on `port`, to one cluster. */
export function oneRouteConfig(
  port: number,
  target: Cluster,
  routeExtra: Partial<Route> = {},
  generation = 1,
): CompiledConfig {
  return simpleConfig(
    port,
    [{ routeId: "r", match: prefix("/") }],
    [route("r", [target.id], routeExtra)],
    [target],
    generation,
  );
}

export function testProxy(opts: Partial<ProxyOptions> = {}): Proxy {
  return new Proxy({
    validate: validateConfig,
    logger: silentLogger(),
    listenerDrainMs: 200,
    ...opts,
  });
}

export interface Serving {
  port: number;
  px: Proxy;
  applied: ApplyResult;
}

/** A test proxy serving `build(port)` on a free port; throws, naming the problems, if refused. */
export async function servingConfig(
  build: (port: number) => CompiledConfig,
  opts: Partial<ProxyOptions> = {},
): Promise<Serving> {
  const port = await freePort();
  const px = testProxy(opts);
  const applied = await px.apply(build(port));
  if (!applied.ok) {
    await px.close(0);
    throw new Error(`the test config was refused: ${applied.problems.join("; ")}`);
  }
  return { port, px, applied };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  json<T = EchoBody>(): T;
}
export interface EchoBody {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  body: string;
}

export const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function get(
  port: number,
  path: string,
  options: {
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: string;
    agent?: http.Agent | false;
    host?: string;
    /** the client's address (any of 127.0.0.0/8) */
    localAddress?: string;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        headers: { host: options.host ?? "example.com", ...options.headers },
        agent: options.agent ?? false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      res => {
        const chunks: Buffer[] = [];
        res.on("data", c => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body,
            json: <T>() => JSON.parse(body) as T,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

/** Writes raw bytes on a fresh connection and returns everything the server sends until it closes (or timeoutMs). */
export function rawExchange(
  port: number,
  data: string | Buffer,
  timeoutMs = 3000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    }, timeoutMs);
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", err => {
      clearTimeout(t);
      if (chunks.length) resolve(Buffer.concat(chunks).toString("latin1"));
      else reject(err);
    });
    s.on("close", () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    s.write(data);
  });
}

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** Polls `check` until it holds (a busy 2-core machine makes timers late: no fixed sleeps). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "the condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function filters(...f: Filter[]): Filter[] {
  return f;
}

export interface WsBackend {
  port: number;
  close(): Promise<void>;
}

// A minimal WebSocket-ish backend: completes the RFC 6455 handshake, then echoes raw bytes.
export async function startWsBackend(): Promise<WsBackend> {
  const server = http.createServer((_req, res) => res.end("plain"));
  const sockets = new Set<net.Socket>();
  server.on("upgrade", (req, socket: net.Socket, head) => {
    sockets.add(socket);
    const key = req.headers["sec-websocket-key"] ?? "";
    const accept = crypto
      .createHash("sha1")
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Path: ${req.url}\r\n\r\n`,
    );
    if (head.length) socket.write(head);
    socket.on("data", d => socket.write(d));
    socket.on("error", () => {});
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>(r => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
