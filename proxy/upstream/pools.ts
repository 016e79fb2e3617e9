// undici connection pools, one per (protocol, endpoint, TLS settings), shared by every generation and cluster
// that targets the endpoint. A swap keeps the pools the new generation still uses; pools nobody
// uses any more are closed gracefully after a grace period, so requests still in flight on the
// previous generation (and their retries) finish.
// the client modules only, not undici's index (fetch, WebSocket, caches): see undici-clients.d.ts
import Pool from "undici/lib/dispatcher/pool.js";
import type { Dispatcher } from "undici";
import { H2Pool } from "./h2-pool.ts";
import type { UpstreamTls } from "./upstream-tls.ts";

/** What the proxy needs of a pool: undici's dispatchers and our gRPC one (h2-pool.ts). */
export interface UpstreamPool {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface PoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  /** How long a pool no generation uses stays open for in-flight requests. */
  retireGraceMs: number;
  /** gRPC streams: cancelled after this long with no frames either way (Envoy's stream idle
   * timeout default); long-lived quiet streams (watches) are normal in gRPC */
  grpcStreamIdleTimeoutMs: number;
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  connections: 256,
  keepAliveTimeoutMs: 30_000,
  // equal on purpose, as nginx's proxy_read_timeout (60 s for the headers and between body
  // reads): undici then refreshes one timer per request instead of allocating a second one,
  // and every one it allocates outlives the young generation (less old-space garbage per request)
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 60_000,
  connectTimeoutMs: 5_000,
  retireGraceMs: 30_000,
  grpcStreamIdleTimeoutMs: 300_000,
};

export type UpstreamProtocol = "http1" | "h2c" | "ws" | "grpc" | "tcp";

// A TLSRoute's endpoint: connections are spliced (server/tcp-proxy.ts), never dispatched; an
// HTTP request that somehow reaches one fails as a bad upstream instead of being sent.
class TcpEndpoint implements UpstreamPool {
  dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    handler.onError?.(
      Object.assign(new Error("a TCP backend takes no HTTP requests"), {
        code: "UND_ERR_INVALID_ARG",
      }),
    );
    return false;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

export function poolKey(
  protocol: UpstreamProtocol,
  address: string,
  port: number,
  tls?: UpstreamTls,
): string {
  const host = address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
  // gRPC has pools of its own: another client, HTTP/2 even over TLS
  if (protocol === "tcp") return `tcp|${host}:${port}`;
  if (protocol === "grpc")
    return `${tls ? "grpcs" : "grpc"}|${host}:${port}${tls ? `|${tls.key}` : ""}`;
  if (tls) return `https|${host}:${port}|${tls.key}`;
  return `${protocol === "h2c" ? "h2c" : "http1"}|${host}:${port}`;
}

export class PoolRegistry {
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly retiring = new Map<string, NodeJS.Timeout>();
  readonly options: PoolOptions;

  constructor(options: Partial<PoolOptions> = {}) {
    this.options = { ...DEFAULT_POOL_OPTIONS, ...options };
  }

  get size(): number {
    return this.pools.size;
  }

  has(key: string): boolean {
    return this.pools.has(key);
  }

  /** The pool for key, created on first use (off the request path: called while preparing). */
  acquire(
    protocol: UpstreamProtocol,
    address: string,
    port: number,
    tls?: UpstreamTls,
  ): UpstreamPool {
    const key = poolKey(protocol, address, port, tls);
    const t = this.retiring.get(key);
    if (t) {
      clearTimeout(t);
      this.retiring.delete(key);
    }
    let pool = this.pools.get(key);
    if (pool === undefined) {
      const hostPort = key.split("|")[1]!;
      const origin = `${tls ? "https" : "http"}://${hostPort}`;
      const o = this.options;
      const common = {
        keepAliveTimeout: o.keepAliveTimeoutMs,
        headersTimeout: o.headersTimeoutMs,
        bodyTimeout: o.bodyTimeoutMs,
        connectTimeout: o.connectTimeoutMs,
      };
      pool =
        protocol === "tcp"
          ? new TcpEndpoint()
          : protocol === "grpc" || protocol === "h2c"
            ? new H2Pool(origin, {
                connectTimeoutMs: o.connectTimeoutMs,
                // gRPC streams may stay quiet for long; other HTTP/2 has HTTP/1's body timeout
                streamIdleTimeoutMs:
                  protocol === "grpc" ? o.grpcStreamIdleTimeoutMs : o.bodyTimeoutMs,
                sessionIdleTimeoutMs: o.keepAliveTimeoutMs,
                ...(tls ? { tls: tls.connect } : {}),
              })
            : new Pool(origin, {
                ...common,
                connections: o.connections,
                pipelining: 1,
                ...(tls ? { connect: tls.connect } : {}),
              });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Closes (after the grace period) every pool whose key is not in `keep`. */
  retainOnly(keep: Set<string>) {
    for (const key of this.pools.keys()) {
      if (keep.has(key) || this.retiring.has(key)) continue;
      const timer = setTimeout(() => {
        this.retiring.delete(key);
        const pool = this.pools.get(key);
        this.pools.delete(key);
        pool?.close().catch(() => {});
      }, this.options.retireGraceMs);
      timer.unref();
      this.retiring.set(key, timer);
    }
  }

  /** Closes every pool gracefully (in-flight requests finish). */
  close(): Promise<void> {
    return this.endAll(p => p.close());
  }

  /** Destroys every pool (in-flight requests fail). */
  destroy(): Promise<void> {
    return this.endAll(p => p.destroy());
  }

  private async endAll(end: (pool: UpstreamPool) => Promise<void>): Promise<void> {
    for (const t of this.retiring.values()) clearTimeout(t);
    this.retiring.clear();
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map(p => end(p).catch(() => {})));
  }
}

/** Dispatch options with the SNI of a TLS cluster: undici's Request takes `servername` (and
 * otherwise derives it from the Host header); its type definitions do not list it. */
export type UpstreamDispatchOptions = Dispatcher.DispatchOptions & {
  servername?: string | undefined;
};
