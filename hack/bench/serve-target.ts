// A `rauta serve --workers 1` process on a directory of Gateway API YAML, as the plugin and
// policy benchmarks run it, and the nginx upstream (`return 200`, 100-byte body) they share.
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { childrenOf, cmdline, proc, waitPort } from "./lib.ts";

export interface ServeTarget {
  name: string;
  url: string;
  headers: string[];
  dir: string;
  metricsPort: number;
  p: ChildProcess | null;
  /** more `rauta serve` flags */
  args?: string[];
}

/** Starts the target and waits until its config (and plugins) is served (/readyz). */
export async function startServe(t: ServeTarget): Promise<void> {
  t.p = proc(
    process.execPath,
    [
      "proxy/bin/rauta.ts",
      "serve",
      "-f",
      t.dir,
      "--workers",
      "1",
      "--metrics-port",
      String(t.metricsPort),
      "--address",
      "127.0.0.1",
      "--no-watch",
      ...(t.args ?? []),
    ],
    t.name,
    { RAUTA_LOG_LEVEL: "error" },
  );
  await waitPort(Number(new URL(t.url).port), 120_000);
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>(r =>
      http
        .get(
          `http://127.0.0.1:${t.metricsPort}/readyz`,
          // a fresh connection: a kept-alive one may be closed by the server as it is reused
          { agent: false },
          res => (res.resume(), r(res.statusCode === 200)),
        )
        .on("error", () => r(false)),
    );
    if (ok) return;
    await new Promise(r => setTimeout(r, 200));
  }
  throw new Error(`${t.name} never became ready`);
}

/** the serving worker (not the primary, not an esbuild service it may still be stopping) */
export const serveWorkerOf = (t: ServeTarget) =>
  childrenOf(t.p!.pid!).filter(pid => cmdline(pid).includes("serve-worker"));

/** nginx answering 200 with a 100-byte body on 127.0.0.1:port, one worker. */
export async function startNginxUpstream(dir: string, port: number): Promise<ChildProcess> {
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    conf,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "${"x".repeat(100)}"; } } }
`,
  );
  const upstream = proc("nginx", ["-c", conf, "-p", dir], "upstream");
  await waitPort(port);
  return upstream;
}

/** GatewayClass rauta and Gateway "bench" with one HTTP listener on `port`. */
export function benchGatewayYaml(port: number): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: rauta }
spec: { controllerName: rauta.io/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: bench, namespace: default }
spec:
  gatewayClassName: rauta
  listeners: [{ name: http, protocol: HTTP, port: ${port} }]`;
}

/** Service "up" (port 80) and its EndpointSlice: the nginx upstream on 127.0.0.1:port. */
export function upstreamYaml(port: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: up, namespace: default }
spec: { ports: [{ name: http, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: up, namespace: default, labels: { kubernetes.io/service-name: up } }
addressType: IPv4
ports: [{ name: http, port: ${port}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]`;
}
