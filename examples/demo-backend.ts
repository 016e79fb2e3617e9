// The demo backends for examples/: two tiny HTTP servers on 127.0.0.1 ("api" on 9001, "web" on
// 9002) that answer with a JSON description of the request they received.
import http from "node:http";

const backends: Array<[string, number]> = [
  ["api", Number(process.env.DEMO_API_PORT ?? 9001)],
  ["web", Number(process.env.DEMO_WEB_PORT ?? 9002)],
];

for (const [name, port] of backends) {
  http
    .createServer((req, res) => {
      const body = `${JSON.stringify({ backend: name, method: req.method, path: req.url, headers: req.headers }, null, 2)}\n`;
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    })
    .listen(port, "127.0.0.1", () =>
      process.stderr.write(`demo backend "${name}" on http://127.0.0.1:${port}\n`),
    );
}
