// The admin endpoint (default :9090): /metrics (Prometheus text), /healthz (process alive),
// /readyz (200 only once a config is loaded).
import http from "node:http";

export interface AdminSources {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): boolean;
}

export function startAdminServer(
  sources: AdminSources,
  port: number,
  host = "0.0.0.0",
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const text = (status: number, body: string) => {
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed\n");
    if (path === "/healthz") return text(200, "ok\n");
    if (path === "/readyz")
      return sources.ready()
        ? text(200, "ready\n")
        : text(503, "not ready: no configuration loaded yet\n");
    if (path === "/metrics") {
      sources.metrics().then(
        m => {
          res.writeHead(200, {
            "content-type": m.contentType,
            "content-length": Buffer.byteLength(m.body),
          });
          res.end(m.body);
        },
        err => text(500, `metrics unavailable: ${(err as Error).message}\n`),
      );
      return;
    }
    text(404, "not found: try /metrics, /healthz or /readyz\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: host === "0.0.0.0" ? undefined : host }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
