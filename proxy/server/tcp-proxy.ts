// A TLS-routed connection spliced to its route's backend: a weighted backend, an endpoint of
// its cluster (Maglev on the client address when the cluster asks for it), a connect with a
// deadline, then bytes both ways with backpressure (pipe) and half-close passed on, until either
// side ends, errors or stays silent for the idle timeout. Passthrough hands over the ClientHello
// bytes already read; Terminate hands over the plaintext of a TLS socket. A connection that
// cannot reach a backend is closed: there is no protocol to answer in.
import net from "node:net";
import type { Duplex } from "node:stream";
import type { Metrics } from "../observability/metrics.ts";
import type { Generation, PreparedBackend, PreparedRoute } from "../runtime/generation.ts";
import type { ProxyCore, Tunnel } from "./handler.ts";

export interface SpliceLimits {
  connectTimeoutMs: number;
  /** no bytes either way for this long closes both sides (0: never) */
  idleTimeoutMs: number;
}

export function pickWeighted(r: PreparedRoute): PreparedBackend | null {
  const n = r.backends.length;
  if (n === 0 || r.totalWeight === 0) return null;
  if (n === 1) return r.backends[0]!;
  const x = Math.random() * r.totalWeight;
  for (let i = 0; i < n; i++) if (x < r.cumulative[i]!) return r.backends[i]!;
  return r.backends[n - 1]!;
}

type Downstream = Duplex & {
  remoteAddress?: string | undefined;
  bytesRead: number;
  bytesWritten: number;
  setTimeout(ms: number, cb?: () => void): unknown;
};

type CounterChild = ReturnType<Metrics["tcpConnections"]["labels"]>;
type GaugeChild = ReturnType<Metrics["tcpActive"]["labels"]>;

// A route's metric children, resolved once per prepared route: a connection costs increments,
// not label lookups (connection rate is what passthrough is slowest at).
interface StreamMetrics {
  ok: CounterChild;
  connectError: CounterChild;
  timeout: CounterChild;
  noBackend: CounterChild;
  active: GaugeChild;
  clientToBackend: CounterChild;
  backendToClient: CounterChild;
}
const byRoute = new WeakMap<PreparedRoute, StreamMetrics>();

function streamMetrics(m: Metrics, route: PreparedRoute): StreamMetrics {
  let s = byRoute.get(route);
  if (s === undefined) {
    const id = route.id;
    s = {
      ok: m.tcpConnections.labels(id, "ok"),
      connectError: m.tcpConnections.labels(id, "connect_error"),
      timeout: m.tcpConnections.labels(id, "timeout"),
      noBackend: m.tcpConnections.labels(id, "no_backend"),
      active: m.tcpActive.labels(id),
      clientToBackend: m.tcpBytes.labels(id, "client_to_backend"),
      backendToClient: m.tcpBytes.labels(id, "backend_to_client"),
    };
    byRoute.set(route, s);
  }
  return s;
}

// from → to with backpressure, its end passed on (half-close); errors and closes are the
// caller's. Fewer listeners than Readable.pipe, which also watches for unpipe and finish.
function relay(from: Duplex, to: Duplex): void {
  from.on("data", (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on("drain", () => from.resume());
  from.once("end", () => to.end());
}

export function splice(
  core: ProxyCore,
  gen: Generation,
  route: PreparedRoute,
  client: Downstream,
  initial: Buffer | null,
  limits: SpliceLimits,
): void {
  const m = core.metrics;
  const sm = streamMetrics(m, route);
  const refuse = () => {
    sm.noBackend.inc();
    client.destroy();
  };
  const backend = pickWeighted(route);
  const cluster = backend?.cluster ?? null;
  if (cluster === null) return refuse();
  const ep = cluster.pick(cluster.config.lb === "maglev" ? (client.remoteAddress ?? null) : null);
  if (ep === null) return refuse();
  const upstream = net.connect({
    host: ep.address,
    port: ep.port,
    allowHalfOpen: true,
    noDelay: true,
  });
  let spliced = false;
  let closed = 0;
  gen.inflight++;
  // a connection counts as a request in flight for least-request balancing
  ep.health.inflight++;
  // errors, timeouts and a removed route end both sides at once; a clean end (FIN) travels
  // through the pipes, and the books close once both sockets have
  const abort = () => {
    client.destroy();
    upstream.destroy();
  };
  const tunnel: Tunnel = { routeId: route.id, generation: gen, close: abort };
  core.tunnels.add(tunnel);
  const connectTimer = setTimeout(() => {
    cluster.report(ep, false);
    m.upstreamErrors.labels(cluster.id, "timeout").inc();
    sm.connectError.inc();
    abort();
  }, limits.connectTimeoutMs);
  const onClose = () => {
    if (!spliced) abort();
    if (++closed < 2) return;
    clearTimeout(connectTimer);
    core.tunnels.delete(tunnel);
    gen.inflight--;
    ep.health.inflight--;
    if (spliced) {
      sm.active.dec();
      sm.clientToBackend.inc(upstream.bytesWritten);
      sm.backendToClient.inc(upstream.bytesRead);
    }
  };
  client.on("error", abort);
  client.once("close", onClose);
  upstream.on("error", (err: Error & { code?: string }) => {
    if (!spliced) {
      cluster.report(ep, false);
      m.upstreamErrors.labels(cluster.id, "connect").inc();
      sm.connectError.inc();
    } else
      m.upstreamErrors.labels(cluster.id, err.code === "ECONNRESET" ? "reset" : "protocol").inc();
    abort();
  });
  upstream.once("close", onClose);
  upstream.once("connect", () => {
    clearTimeout(connectTimer);
    if (client.destroyed) return;
    spliced = true;
    cluster.report(ep, true);
    sm.ok.inc();
    sm.active.inc();
    if (initial !== null && initial.length > 0) upstream.write(initial);
    if (limits.idleTimeoutMs > 0) {
      const idle = () => {
        sm.timeout.inc();
        abort();
      };
      // a socket's timer restarts with every byte it reads or writes: the upstream one sees
      // both directions; the client's catches a client left half-open after the backend ended
      upstream.setTimeout(limits.idleTimeoutMs, idle);
      client.setTimeout(limits.idleTimeoutMs, idle);
    }
    relay(client, upstream);
    relay(upstream, client);
    client.resume();
  });
}
