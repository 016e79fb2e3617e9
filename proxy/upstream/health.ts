// Active health checks of one cluster (its config healthCheck): every endpoint is probed on an
// interval by a TCP connect or an HTTP GET (healthy on expectedStatuses, 200-399 by default),
// spoken as the cluster's requests are: HTTP/2 for h2c and gRPC clusters, over TLS with the
// cluster's BackendTLSPolicy settings when it has them (a plaintext HTTP/1.1 probe would fail
// there and take every endpoint out). `unhealthyThreshold` consecutive failures take it out of
// rotation, `healthyThreshold` consecutive successes bring it back.
import net from "node:net";
import http from "node:http";
import https from "node:https";
import http2 from "node:http2";
import type { ClusterHealthCheck } from "../config/schema.ts";
import type { EndpointHealth } from "./cluster.ts";
import type { UpstreamProtocol } from "./pools.ts";
import type { UpstreamTls } from "./upstream-tls.ts";

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** HTTP path to GET; TCP connect check when absent. */
  httpPath?: string;
  /** Host header (HTTP/2 :authority) of the HTTP probe (default: the endpoint's address:port) */
  hostname?: string;
  /** statuses that count as healthy (default: 200-399) */
  expectedStatuses?: readonly number[];
  /** how the cluster's requests go: h2c and grpc are probed over HTTP/2 (default http1) */
  protocol?: UpstreamProtocol;
  /** the cluster's TLS settings: HTTP probes go over TLS with them */
  tls?: UpstreamTls;
}

/** The checker options of a cluster's config healthCheck. */
export function healthCheckOptions(
  c: ClusterHealthCheck,
  protocol?: UpstreamProtocol,
  tls?: UpstreamTls,
): HealthCheckOptions {
  return {
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    unhealthyThreshold: c.unhealthyThreshold,
    healthyThreshold: c.healthyThreshold,
    ...(c.type === "HTTP" ? { httpPath: c.path ?? "/" } : {}),
    ...(c.hostname ? { hostname: c.hostname } : {}),
    ...(c.expectedStatuses ? { expectedStatuses: c.expectedStatuses } : {}),
    ...(protocol ? { protocol } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** What a cluster's checker runs with: the same string keeps its probing across configs. */
export function healthCheckSettings(
  c: ClusterHealthCheck,
  protocol: UpstreamProtocol,
  tls: UpstreamTls | undefined,
): string {
  return JSON.stringify([c, protocol, tls?.key ?? null]);
}

interface Target {
  address: string;
  port: number;
  health: EndpointHealth;
  timer: NodeJS.Timeout;
  ok: number;
  fail: number;
  running: boolean;
}

const USER_AGENT = "rauta-health-check";

function healthyStatus(o: HealthCheckOptions, status: number): boolean {
  return o.expectedStatuses ? o.expectedStatuses.includes(status) : status >= 200 && status < 400;
}

/** One check of one endpoint: true when it passed within timeoutMs. Never rejects or throws. */
export function probe(address: string, port: number, o: HealthCheckOptions): Promise<boolean> {
  return new Promise(resolve => {
    let done = false;
    let teardown: () => void = () => {};
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        teardown();
      } catch {
        // already torn down
      }
      resolve(v);
    };
    // one deadline for the whole check (connect, handshake, head): a socket timeout would only
    // catch silence, not a backend that trickles
    const timer = setTimeout(() => finish(false), o.timeoutMs);
    timer.unref();
    try {
      if (o.httpPath === undefined) {
        const s = net.connect({ host: address, port });
        teardown = () => s.destroy();
        s.once("connect", () => finish(true));
        s.on("error", () => finish(false));
        return;
      }
      const host = address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
      if (o.protocol === "h2c" || o.protocol === "grpc") {
        const session = http2.connect(
          `${o.tls ? "https" : "http"}://${host}:${port}`,
          o.tls ? o.tls.connect : {},
        );
        teardown = () => session.destroy();
        session.on("error", () => finish(false));
        const req = session.request({
          ":method": "GET",
          ":path": o.httpPath,
          ":authority": o.hostname ?? `${host}:${port}`,
          "user-agent": USER_AGENT,
        });
        req.once("response", headers => finish(healthyStatus(o, Number(headers[":status"]))));
        req.on("error", () => finish(false));
        req.once("close", () => finish(false));
        req.end();
        return;
      }
      const options: https.RequestOptions = {
        host: address,
        port,
        path: o.httpPath,
        agent: false,
        headers: { "user-agent": USER_AGENT, ...(o.hostname ? { host: o.hostname } : {}) },
      };
      const req = o.tls ? https.get({ ...o.tls.connect, ...options }) : http.get(options);
      teardown = () => req.destroy();
      req.once("response", res => {
        res.resume();
        finish(healthyStatus(o, res.statusCode ?? 0));
      });
      req.on("error", () => finish(false));
    } catch {
      // options Node refuses (a Host it will not send, say): the check fails, nothing throws
      finish(false);
    }
  });
}

export class HealthChecker {
  private readonly targets = new Map<string, Target>();
  readonly options: HealthCheckOptions;
  onChange: ((key: string, healthy: boolean) => void) | null = null;

  constructor(options: HealthCheckOptions) {
    this.options = options;
  }

  /** Makes the probed set exactly `endpoints` (key → target). */
  sync(endpoints: Map<string, { address: string; port: number; health: EndpointHealth }>) {
    for (const [key, t] of this.targets) {
      if (!endpoints.has(key)) {
        clearInterval(t.timer);
        this.targets.delete(key);
      }
    }
    for (const [key, e] of endpoints) {
      if (this.targets.has(key)) continue;
      const t: Target = {
        ...e,
        ok: 0,
        fail: 0,
        running: false,
        timer: undefined as unknown as NodeJS.Timeout,
      };
      t.timer = setInterval(() => void this.check(key, t), this.options.intervalMs);
      t.timer.unref();
      this.targets.set(key, t);
      void this.check(key, t);
    }
  }

  private async check(key: string, t: Target) {
    if (t.running) return;
    t.running = true;
    const ok = await probe(t.address, t.port, this.options);
    t.running = false;
    if (!this.targets.has(key)) return;
    if (ok) {
      t.fail = 0;
      if (++t.ok >= this.options.healthyThreshold && !t.health.activeHealthy) {
        t.health.activeHealthy = true;
        this.onChange?.(key, true);
      }
    } else {
      t.ok = 0;
      if (++t.fail >= this.options.unhealthyThreshold && t.health.activeHealthy) {
        t.health.activeHealthy = false;
        this.onChange?.(key, false);
      }
    }
  }

  stop() {
    for (const t of this.targets.values()) clearInterval(t.timer);
    this.targets.clear();
  }
}
