// Routing cases in the shape of the Gateway API conformance tests: a directory with the
// objects (gateway.yaml) and the requests with what each must get (requests.yaml), run
// in-process through compile → proxy → real sockets. Every Service named in the case gets an
// echo backend (it answers JSON naming itself and describing the request it received, and
// accepts WebSocket upgrades); the case's listener ports are replaced by free ones.
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { parse } from "yaml";
import { compile } from "../../capabilities/compiler/index.ts";
import { loadManifests, formatManifestError } from "../../proxy/cli/manifests.ts";
import { Proxy } from "../../proxy/runtime/proxy.ts";
import { validateConfig } from "../../proxy/config/load.ts";
import { silentLogger } from "../../proxy/observability/logger.ts";
import { freePort } from "./net.ts";

export interface RoutingRequest {
  method?: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
  /** send an HTTP/1.1 Upgrade: websocket handshake */
  upgrade?: boolean;
  /** the Gateway listener (by name) to send it to; default: the first */
  listener?: string;
}

export interface RoutingExpectation {
  status: number;
  /** the Service whose echo answered */
  backend?: string;
  /** request target the backend received */
  path?: string;
  /** request headers the backend received (null: absent) */
  requestHeaders?: Record<string, string | null>;
  /** response headers the client got (null: absent) */
  headers?: Record<string, string | null>;
  bodyContains?: string;
}

export interface RoutingCase {
  name: string;
  description: string;
  dir: string;
  steps: Array<{ name?: string; request: RoutingRequest; expect: RoutingExpectation }>;
}

export function loadCases(root: string): RoutingCase[] {
  return fs
    .readdirSync(root)
    .filter(d => fs.statSync(path.join(root, d)).isDirectory())
    .sort()
    .map(name => {
      const dir = path.join(root, name);
      const text = fs.readFileSync(path.join(dir, "requests.yaml"), "utf8");
      const description = text
        .split("\n")
        .filter(l => l.startsWith("#"))
        .map(l => l.replace(/^#\s?/, ""))
        .join(" ");
      return { name, description, dir, steps: parse(text) as RoutingCase["steps"] };
    });
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface EchoBody {
  backend: string;
  url: string;
  headers: Record<string, string>;
}

export class RoutingHarness {
  readonly proxy: Proxy;
  private readonly echoes: http.Server[] = [];
  /** listener name → port */
  readonly ports = new Map<string, number>();
  problems: string[] = [];

  private constructor(proxy: Proxy) {
    this.proxy = proxy;
  }

  static async start(dir: string): Promise<RoutingHarness> {
    const loaded = loadManifests([path.join(dir, "gateway.yaml")]);
    if (loaded.errors.length) throw new Error(loaded.errors.map(formatManifestError).join("\n"));
    const snap = loaded.snapshot;
    const harness = new RoutingHarness(
      new Proxy({ validate: validateConfig, logger: silentLogger(), listenerDrainMs: 100 }),
    );
    for (const gw of snap.gateways)
      for (const l of gw.spec.listeners) {
        const port = await freePort();
        harness.ports.set(l.name, port);
        l.port = port;
      }
    for (const svc of snap.services) {
      const port = await harness.echo(svc.metadata.name);
      snap.endpointSlices.push({
        metadata: {
          name: `${svc.metadata.name}-echo`,
          namespace: svc.metadata.namespace ?? "default",
          labels: { "kubernetes.io/service-name": svc.metadata.name },
        },
        addressType: "IPv4",
        ports: (svc.spec?.ports ?? []).map(p => ({ name: p.name, port, protocol: "TCP" })),
        endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }],
      } as (typeof snap.endpointSlices)[number]);
    }
    const { config } = compile(snap, { generation: 1, defaultAddress: "127.0.0.1" });
    const r = await harness.proxy.apply(config);
    if (!r.ok) throw new Error(`config refused: ${r.problems.join("; ")}`);
    harness.problems = r.problems;
    return harness;
  }

  private async echo(name: string): Promise<number> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", c => chunks.push(c));
      req.on("end", () => {
        const body = JSON.stringify({ backend: name, url: req.url, headers: req.headers });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        });
        res.end(body);
      });
    });
    server.on("upgrade", (req, socket: net.Socket) => {
      socket.on("error", () => {});
      socket.end(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: ${name}\r\nX-Path: ${req.url}\r\n\r\n`,
      );
    });
    await new Promise<void>(r => server.listen(0, "127.0.0.1", () => r()));
    this.echoes.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  /** Sends the request as raw bytes (paths go out exactly as written) and reads the reply. */
  send(req: RoutingRequest): Promise<Reply> {
    const port = req.listener ? this.ports.get(req.listener) : this.ports.values().next().value;
    if (port === undefined) throw new Error(`no listener ${req.listener}`);
    const headers: Record<string, string> = {
      host: req.host ?? "example.com",
      connection: "close",
      ...req.headers,
    };
    if (req.upgrade)
      Object.assign(headers, {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      });
    if (req.body !== undefined) headers["content-length"] = String(Buffer.byteLength(req.body));
    let head = `${req.method ?? "GET"} ${req.path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    return new Promise((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => s.destroy(), 5000);
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        // an upgrade answer has no body and the tunnel stays open: the head is enough
        if (req.upgrade && Buffer.concat(chunks).includes("\r\n\r\n")) s.destroy();
      });
      s.on("error", reject);
      s.on("close", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("latin1");
        const i = text.indexOf("\r\n\r\n");
        const lines = text.slice(0, i).split("\r\n");
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
        const h: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(":");
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          h[k] = h[k] === undefined ? v : `${h[k]}, ${v}`;
        }
        resolve({ status, headers: h, body: i < 0 ? "" : text.slice(i + 4) });
      });
      s.write(head + "\r\n" + (req.body ?? ""));
    });
  }

  /** The port a request goes to ($PORT in expectations: listener ports are picked at random). */
  portOf(req: RoutingRequest): number {
    return (req.listener ? this.ports.get(req.listener) : this.ports.values().next().value) ?? 0;
  }

  /** Checks one reply against its expectation; returns what differs (empty: it matched). */
  static check(reply: Reply, expected: RoutingExpectation, upgrade: boolean, port = 0): string[] {
    const want = JSON.parse(
      JSON.stringify(expected).replaceAll("$PORT", String(port)),
    ) as RoutingExpectation;
    const out: string[] = [];
    if (reply.status !== want.status)
      out.push(`status ${reply.status}, want ${want.status} (body: ${reply.body.slice(0, 200)})`);
    let echo: EchoBody | null = null;
    if (
      want.backend !== undefined ||
      want.path !== undefined ||
      want.requestHeaders !== undefined
    ) {
      if (upgrade)
        echo = {
          backend: reply.headers["x-backend"] ?? "",
          url: reply.headers["x-path"] ?? "",
          headers: {},
        };
      else
        try {
          echo = JSON.parse(reply.body) as EchoBody;
        } catch {
          out.push(`no backend answered (body: ${reply.body.slice(0, 200)})`);
        }
    }
    if (echo !== null) {
      if (want.backend !== undefined && echo.backend !== want.backend)
        out.push(`backend ${echo.backend}, want ${want.backend}`);
      if (want.path !== undefined && echo.url !== want.path)
        out.push(`backend got ${echo.url}, want ${want.path}`);
      for (const [k, v] of Object.entries(want.requestHeaders ?? {}))
        if ((echo.headers[k.toLowerCase()] ?? null) !== v)
          out.push(
            `backend saw ${k}: ${echo.headers[k.toLowerCase()] ?? "(absent)"}, want ${v ?? "(absent)"}`,
          );
    }
    for (const [k, v] of Object.entries(want.headers ?? {}))
      if ((reply.headers[k.toLowerCase()] ?? null) !== v)
        out.push(
          `response ${k}: ${reply.headers[k.toLowerCase()] ?? "(absent)"}, want ${v ?? "(absent)"}`,
        );
    if (want.bodyContains !== undefined && !reply.body.includes(want.bodyContains))
      out.push(
        `body does not contain ${JSON.stringify(want.bodyContains)}: ${reply.body.slice(0, 200)}`,
      );
    return out;
  }

  async close(): Promise<void> {
    await this.proxy.close(100);
    await Promise.all(
      this.echoes.map(
        s =>
          new Promise<void>(r => {
            s.closeAllConnections();
            s.close(() => r());
          }),
      ),
    );
  }
}
