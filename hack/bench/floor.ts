// The floor: the tuned bare Node proxy the issue measures RAUTA against. node:http downstream,
// one undici Pool upstream, Pool.stream() writing the upstream body straight into the response.
// No routing, no filters, no metrics. Usage: node hack/bench/floor.ts <listenPort> <upstreamPort>
import http from "node:http";
import { Pool } from "undici";

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, {
  connections: 256,
  pipelining: 1,
  keepAliveTimeout: 30_000,
});

const server = http.createServer((req, res) => {
  pool
    .stream(
      {
        path: req.url!,
        method: req.method as "GET",
        headers: { host: req.headers.host ?? "" },
        body: req.method === "GET" || req.method === "HEAD" ? null : req,
      },
      ({ statusCode, headers }) => {
        delete headers.connection;
        delete headers["keep-alive"];
        delete headers["transfer-encoding"];
        res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
        return res;
      },
    )
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
});
server.keepAliveTimeout = 30_000;
server.listen(listenPort, "127.0.0.1", () =>
  process.stderr.write(`floor proxy on :${listenPort} → :${upstreamPort}\n`),
);
