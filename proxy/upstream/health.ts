// Active health checks of one cluster (its config healthCheck): every endpoint is probed on an
// interval by a TCP connect or an HTTP GET (healthy on expectedStatuses, 200-399 by default).
// `unhealthyThreshold` consecutive failures take it out of rotation, `healthyThreshold`
// consecutive successes bring it back.
import net from "node:net";
import http from "node:http";
import type { ClusterHealthCheck } from "../config/schema.ts";
import type { EndpointHealth } from "./cluster.ts";

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** HTTP path to GET; TCP connect check when absent. */
  httpPath?: string;
  /** Host header of the HTTP probe (default: the endpoint's address) */
  hostname?: string;
  /** statuses that count as healthy (default: 200-399) */
  expectedStatuses?: readonly number[];
}

/** The checker options of a cluster's config healthCheck. */
export function healthCheckOptions(c: ClusterHealthCheck): HealthCheckOptions {
  return {
    intervalMs: c.intervalMs,
    timeoutMs: c.timeoutMs,
    unhealthyThreshold: c.unhealthyThreshold,
    healthyThreshold: c.healthyThreshold,
    ...(c.type === "HTTP" ? { httpPath: c.path ?? "/" } : {}),
    ...(c.hostname ? { hostname: c.hostname } : {}),
    ...(c.expectedStatuses ? { expectedStatuses: c.expectedStatuses } : {}),
  };
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

export function probe(address: string, port: number, o: HealthCheckOptions): Promise<boolean> {
  return new Promise(resolve => {
    let done = false;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      resolve(v);
    };
    if (o.httpPath === undefined) {
      const s = net.connect({ host: address, port });
      s.setTimeout(o.timeoutMs, () => {
        s.destroy();
        finish(false);
      });
      s.once("connect", () => {
        s.destroy();
        finish(true);
      });
      s.once("error", () => finish(false));
      return;
    }
    const req = http.get(
      {
        host: address,
        port,
        path: o.httpPath,
        timeout: o.timeoutMs,
        agent: false,
        headers: {
          "user-agent": "rauta-health-check",
          ...(o.hostname ? { host: o.hostname } : {}),
        },
      },
      res => {
        res.resume();
        const status = res.statusCode ?? 0;
        finish(
          o.expectedStatuses ? o.expectedStatuses.includes(status) : status >= 200 && status < 400,
        );
      },
    );
    req.once("timeout", () => {
      req.destroy();
      finish(false);
    });
    req.once("error", () => finish(false));
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
