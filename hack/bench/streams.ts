// Stream benchmarks (`npm run bench:streams`), each as a ratio against a reference proxy in the
// same run, every proxy with one worker:
//   gRPC unary — h2load (h2c prior knowledge, one gRPC frame per POST) through RAUTA (GRPCRoute)
//                and through nginx `grpc_pass`, in front of one node:http2 gRPC backend that
//                runs in a process of its own (this file, started with `grpc-backend <port>`).
//   TLS passthrough — wrk over HTTPS with SNI bench.example.com through RAUTA (TLS listener,
//                Passthrough, TLSRoute) and through haproxy `mode tcp` routing on the SNI, to an
//                nginx that terminates TLS: keep-alive requests, 1 MiB responses (bytes/s) and a
//                new connection per request (connections/s).
// Rounds are interleaved and the best round per target is reported (the machine is shared, so
// interference only ever slows a round down). Writes the tables to docs/benchmarks.md between
// the stream-bench markers.
//
//   npm run bench:streams                 BENCH_DURATION=5 BENCH_ROUNDS=2 by default
//   npm run bench:streams -- --no-write
import { execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { selfSigned } from "../../test/helpers/certs.ts";
import { Deframer, frame, grpcCall } from "../../test/helpers/grpc.ts";
import { freePort } from "../../test/helpers/net.ts";
import {
  CONNECTIONS,
  DURATION,
  ROOT,
  childrenOf,
  cmdline,
  ensureTools,
  kill,
  measured,
  ms,
  proc,
  waitPort,
  writeBenchmarkSection,
} from "./lib.ts";
import type { Result } from "./lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const NODE = process.execPath;
const SNI = "bench.example.com";
const GRPC_PATH = "/bench.Echo/Unary";
const BODY = "x".repeat(100);
const write = !process.argv.includes("--no-write");
// h2load's connections and streams per connection, as in run.ts's h2 load
const H2_CLIENTS = 10;
const H2_STREAMS = 10;

// The gRPC backend, when this file is started as one: answers every call to GRPC_PATH with
// HTTP 200, one message echoing the request's and grpc-status 0 in trailers.
function grpcBackend(port: number) {
  const server = http2.createServer();
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.on("error", () => {});
    const got = new Deframer();
    stream.on("data", (c: Buffer) => got.push(c));
    stream.on("end", () => {
      if (stream.destroyed) return;
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame(got.messages[0] ?? Buffer.alloc(0)));
    });
  });
  server.listen(port, "127.0.0.1");
  process.on("SIGTERM", () => process.exit(0));
}

interface Load extends Omit<Result, "rssMb" | "privateMb" | "cpuUsPerReq"> {
  requests: number;
  /** bytes/s the client read, wrk's Transfer/sec */
  bytesPerSec: number;
}

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN;
const fmtMs = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)}us` : `${x.toFixed(2)}ms`);

// h2load POSTing the gRPC frame in `bodyFile`; percentiles come from its per-request log
// (start, status, µs to the end of the response), since its summary only has min/max/mean.
function runGrpcH2load(url: string, bodyFile: string, log: string): Load {
  const out = execFileSync(
    "h2load",
    [
      "-c",
      String(H2_CLIENTS),
      "-m",
      String(H2_STREAMS),
      "-D",
      String(DURATION),
      "-d",
      bodyFile,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "--log-file",
      log,
      url,
    ],
    { encoding: "utf8" },
  );
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  if (m && m[2] !== "0") console.error(`  h2load ${url}: ${m[2]} failed`);
  const lat = fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map(l => l.split("\t"))
    .filter(f => f[1] === "200")
    .map(f => Number(f[2]) / 1000)
    .sort((a, b) => a - b);
  fs.rmSync(log, { force: true });
  const p99ms = pct(lat, 0.99);
  return {
    rps,
    p50: fmtMs(pct(lat, 0.5)),
    p99: fmtMs(p99ms),
    p99ms,
    requests: Number(m?.[1] ?? 0),
    bytesPerSec: 0,
  };
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

// wrk against https://bench.example.com:<port> with the name resolved to 127.0.0.1 by the Lua
// script (wrk sends the URL's host as SNI; no /etc/hosts entry needed).
function runTlsWrk(port: number, urlPath: string, resolver: string, headers: string[]): Load {
  const url = `https://${SNI}:${port}${urlPath}`;
  const out = execFileSync(
    "wrk",
    [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${DURATION}s`,
      "--latency",
      "-s",
      resolver,
      ...headers.flatMap(h => ["-H", h]),
      url,
    ],
    { encoding: "utf8" },
  );
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? "?";
  const transfer = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) console.error(`  wrk ${url} ${headers.join(" ")}: ${errors[0]}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: /\s50%\s+(\S+)/.exec(out)?.[1] ?? "?",
    p99,
    p99ms: ms(p99),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    bytesPerSec: transfer ? Number(transfer[1]) * (UNITS[transfer[2]!] ?? NaN) : NaN,
  };
}

function grpcYaml(port: number, backend: number): string {
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
  listeners: [{ name: http, protocol: HTTP, port: ${port} }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: echo, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  rules: [{ backendRefs: [{ name: echo, port: 9000 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { ports: [{ name: grpc, port: 9000, appProtocol: kubernetes.io/h2c }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: echo, namespace: default, labels: { kubernetes.io/service-name: echo } }
addressType: IPv4
ports: [{ name: grpc, port: ${backend}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
`;
}

function passthroughYaml(port: number, backend: number): string {
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
  listeners: [{ name: tls, protocol: TLS, port: ${port}, tls: { mode: Passthrough } }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: { name: bench, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  hostnames: [${SNI}]
  rules: [{ backendRefs: [{ name: tls-up, port: 443 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: tls-up, namespace: default }
spec: { ports: [{ name: tls, port: 443 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: tls-up, namespace: default, labels: { kubernetes.io/service-name: tls-up } }
addressType: IPv4
ports: [{ name: tls, port: ${backend}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
`;
}

interface Target {
  name: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** pids whose CPU is counted (the serving worker, not a primary) */
  servingPids(): number[];
}

function target(
  name: string,
  port: number,
  start: () => ChildProcess | null,
  pids: (p: ChildProcess | null) => number[],
  ready: () => Promise<void> = () => waitPort(port, 120_000),
): Target {
  let p: ChildProcess | null = null;
  return {
    name,
    port,
    async start() {
      p = start();
      await ready();
    },
    async stop() {
      await kill(p);
      p = null;
    },
    servingPids: () => pids(p),
  };
}

async function readyz(metricsPort: number) {
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>(r =>
      http
        .get(
          `http://127.0.0.1:${metricsPort}/readyz`,
          res => (res.resume(), r(res.statusCode === 200)),
        )
        .on("error", () => r(false)),
    );
    if (ok) return;
    await new Promise(r => setTimeout(r, 200));
  }
  throw new Error(`RAUTA on metrics port ${metricsPort} never became ready`);
}

function rauta(name: string, dir: string, yaml: string, port: number, metrics: number): Target {
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "gateway.yaml"), yaml);
  return target(
    name,
    port,
    () =>
      proc(
        NODE,
        [
          "proxy/bin/rauta.ts",
          "serve",
          "-f",
          dir,
          "--workers",
          "1",
          "--metrics-port",
          String(metrics),
          "--address",
          "127.0.0.1",
          "--no-watch",
        ],
        name,
        { RAUTA_LOG_LEVEL: "error" },
      ),
    // the serving worker, not the primary
    p => (p ? childrenOf(p.pid!).filter(pid => cmdline(pid).includes("serve-worker")) : []),
    async () => {
      await waitPort(port, 120_000);
      await readyz(metrics);
    },
  );
}

// One call through `port` with a node:http2 client: h2load counts HTTP 200 as success, so this
// checks that the echo and grpc-status 0 in the trailers make it through the proxy.
async function checkGrpc(name: string, port: number) {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  try {
    const call = await grpcCall(client, GRPC_PATH, { send: s => void s.end(frame("ping")) });
    const echo = call.messages.map(m => m.toString()).join(",");
    if (call.status !== 200 || call.trailers["grpc-status"] !== "0" || echo !== "ping")
      throw new Error(
        `${name}: gRPC call got status ${call.status}, grpc-status ${String(call.trailers["grpc-status"] ?? call.headers["grpc-status"])}, messages "${echo}"`,
      );
    console.error(`  ${name}: gRPC call ok (200, echo, trailers grpc-status 0)`);
  } finally {
    client.close();
  }
}

// One HTTPS request with SNI bench.example.com to 127.0.0.1:<port>: the certificate must be
// the backend's (passthrough, not termination) and the answer its 200.
async function checkTls(name: string, port: number, ca: string) {
  const { status, cn } = await new Promise<{ status: number; cn: string }>((resolve, reject) => {
    https
      .get(
        { host: "127.0.0.1", port, servername: SNI, ca, headers: { host: SNI }, agent: false },
        res => {
          const cn = (res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? "";
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, cn: String(cn) }));
        },
      )
      .on("error", reject);
  });
  if (status !== 200 || cn !== SNI)
    throw new Error(`${name}: HTTPS through it got ${status} from certificate "${cn}"`);
  console.error(`  ${name}: TLS ok (200 from the backend's certificate ${cn})`);
}

interface TlsLoad {
  key: "keepalive" | "big" | "close";
  label: string;
  path: string;
  headers: string[];
}

const TLS_LOADS: TlsLoad[] = [
  { key: "keepalive", label: "keep-alive, 100-byte responses", path: "/", headers: [] },
  { key: "big", label: "keep-alive, 1 MiB responses", path: "/big", headers: [] },
  {
    key: "close",
    label: "new connection per request",
    path: "/",
    headers: ["Connection: close"],
  },
];

type Measured = Load & { cpuUsPerReq: number };

async function main() {
  ensureTools();
  // Debian's nginx has ngx_http_grpc_module unless configured out
  const nginxV = execFileSync("nginx", ["-V"], { encoding: "utf8", stdio: "pipe" });
  if (/--without-http_grpc_module/.test(nginxV))
    throw new Error("this nginx lacks grpc_pass: apt-get install nginx (or nginx-full)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-bench-streams-"));
  // nginx's workers drop root for an unprivileged user, which must reach the 1 MiB file
  fs.chmodSync(dir, 0o755);
  const load = (fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3) as string[]).join(
    ", ",
  );

  // gRPC: the backend, nginx grpc_pass, RAUTA
  const grpcUp = await freePort();
  const bodyFile = path.join(dir, "grpc-body.bin");
  fs.writeFileSync(bodyFile, frame(BODY));
  const backendP = proc(
    NODE,
    [path.join(ROOT, "hack/bench/streams.ts"), "grpc-backend", String(grpcUp)],
    "grpc backend",
  );
  const nginxGrpcPort = await freePort();
  const nginxGrpcConf = path.join(dir, "nginx-grpc.conf");
  fs.writeFileSync(
    nginxGrpcConf,
    `worker_processes 1; daemon off; pid ${dir}/nginx-grpc.pid; error_log ${dir}/nginx-grpc.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  upstream g { server 127.0.0.1:${grpcUp}; keepalive 128; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${nginxGrpcPort} http2;
    location / { grpc_pass grpc://g; } } }
`,
  );

  // TLS: the terminating nginx, haproxy, RAUTA
  const certs = path.join(dir, "certs");
  fs.mkdirSync(certs);
  const pair = selfSigned(certs, SNI, `DNS:${SNI}`);
  fs.writeFileSync(path.join(certs, "tls.crt"), pair.cert);
  fs.writeFileSync(path.join(certs, "tls.key"), pair.key);
  fs.writeFileSync(path.join(dir, "big"), Buffer.alloc(1024 * 1024, 120));
  const tlsUp = await freePort();
  const tlsUpConf = path.join(dir, "tls-upstream.conf");
  fs.writeFileSync(
    tlsUpConf,
    `worker_processes 1; daemon off; pid ${dir}/tls-upstream.pid; error_log ${dir}/tls-upstream.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${tlsUp} ssl; server_name ${SNI};
    ssl_certificate ${certs}/tls.crt; ssl_certificate_key ${certs}/tls.key;
    location = /big { root ${dir}; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "${BODY}"; } } }
`,
  );
  const tlsUpP = proc("nginx", ["-c", tlsUpConf, "-p", dir], "tls upstream nginx");
  const resolver = path.join(dir, "resolve.lua");
  fs.writeFileSync(
    resolver,
    `-- connect to 127.0.0.1 whatever the URL's host (which wrk still sends as SNI)\nwrk.resolve = function(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end\n`,
  );
  const haPort = await freePort();
  const haConf = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(
    haConf,
    `global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:${haPort}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  use_backend b if { req_ssl_sni -i ${SNI} }
backend b
  server up 127.0.0.1:${tlsUp}
`,
  );

  const grpcTargets: Target[] = [
    target(
      "direct (gRPC backend)",
      grpcUp,
      () => null,
      () => [backendP.pid!],
    ),
    target(
      "nginx grpc_pass",
      nginxGrpcPort,
      () => proc("nginx", ["-c", nginxGrpcConf, "-p", dir], "nginx grpc"),
      p => (p ? childrenOf(p.pid!) : []),
    ),
  ];
  const rautaGrpcPort = await freePort();
  grpcTargets.push(
    rauta(
      "RAUTA GRPCRoute",
      path.join(dir, "rauta-grpc"),
      grpcYaml(rautaGrpcPort, grpcUp),
      rautaGrpcPort,
      await freePort(),
    ),
  );
  const tlsTargets: Target[] = [
    target(
      "direct (TLS nginx)",
      tlsUp,
      () => null,
      () => childrenOf(tlsUpP.pid!),
    ),
    target(
      "haproxy mode tcp, SNI",
      haPort,
      () => proc("haproxy", ["-f", haConf], "haproxy"),
      p => (p ? [p.pid!] : []),
    ),
  ];
  const rautaTlsPort = await freePort();
  tlsTargets.push(
    rauta(
      "RAUTA TLSRoute, Passthrough",
      path.join(dir, "rauta-tls"),
      passthroughYaml(rautaTlsPort, tlsUp),
      rautaTlsPort,
      await freePort(),
    ),
  );

  const grpcBest = new Map<string, Measured>();
  const tlsBest = new Map<string, Measured>();
  const rounds = new Map<string, number[]>();
  const keep = (best: Map<string, Measured>, key: string, r: Measured) => {
    (rounds.get(key) ?? rounds.set(key, []).get(key)!).push(r.rps);
    const prev = best.get(key);
    if (!prev || r.rps > prev.rps) best.set(key, r);
  };
  try {
    await waitPort(grpcUp);
    await waitPort(tlsUp);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of grpcTargets) {
        await t.start();
        if (round === 1) await checkGrpc(t.name, t.port);
        const url = `http://127.0.0.1:${t.port}${GRPC_PATH}`;
        const log = path.join(dir, "h2load.log");
        execFileSync(
          "h2load",
          [
            "-c",
            "10",
            "-m",
            "10",
            "-D",
            "1",
            "-d",
            bodyFile,
            "-H",
            "content-type: application/grpc",
            url,
          ],
          { stdio: "ignore" },
        ); // warm-up
        const r = measured(t.servingPids(), () => runGrpcH2load(url, bodyFile, log));
        console.error(
          `round ${round} ${t.name}: ${Math.round(r.rps)} rps p50 ${r.p50} p99 ${r.p99} cpu ${r.cpuUsPerReq.toFixed(1)} us/req`,
        );
        keep(grpcBest, t.name, r);
        await t.stop();
      }
      for (const t of tlsTargets) {
        await t.start();
        if (round === 1) await checkTls(t.name, t.port, pair.cert);
        runTlsWrkWarm(t.port, resolver);
        for (const l of TLS_LOADS) {
          const r = measured(t.servingPids(), () => runTlsWrk(t.port, l.path, resolver, l.headers));
          console.error(
            `round ${round} ${t.name} ${l.key}: ${Math.round(r.rps)} rps ${(r.bytesPerSec / 1024 ** 2).toFixed(1)} MiB/s p50 ${r.p50} p99 ${r.p99} cpu ${r.cpuUsPerReq.toFixed(1)} us/req`,
          );
          keep(tlsBest, `${t.name}|${l.key}`, r);
        }
        await t.stop();
      }
    }
  } finally {
    for (const t of [...grpcTargets, ...tlsTargets]) await t.stop();
    await kill(backendP);
    await kill(tlsUpP);
  }

  const n = (x?: number) => (x ? Math.round(x).toLocaleString("en-US") : "–");
  const ratio = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
  const us = (r?: Measured) =>
    r && Number.isFinite(r.cpuUsPerReq) ? `${r.cpuUsPerReq.toFixed(1)} µs` : "–";
  const check = (a?: number, b?: number) => (a && b ? (a >= 0.5 * b ? "met" : "NOT met") : "n/a");
  const nginx = grpcBest.get("nginx grpc_pass");
  const rg = grpcBest.get("RAUTA GRPCRoute");
  const grpcRows = grpcTargets.map(t => {
    const r = grpcBest.get(t.name);
    return `| ${t.name} | ${n(r?.rps)} | ${r?.p50 ?? "–"} | ${r?.p99 ?? "–"} | ${us(r)} | ${ratio(r?.rps, nginx?.rps)} | ${ratio(r?.p99ms, nginx?.p99ms)} |`;
  });
  const tls = (name: string, key: TlsLoad["key"]) => tlsBest.get(`${name}|${key}`);
  const ha = "haproxy mode tcp, SNI";
  const rt = "RAUTA TLSRoute, Passthrough";
  const tlsRows = tlsTargets.flatMap(t =>
    TLS_LOADS.map(l => {
      const r = tls(t.name, l.key);
      const h = tls(ha, l.key);
      const mib = r ? `${(r.bytesPerSec / 1024 ** 2).toFixed(1)} MiB/s` : "–";
      return `| ${t.name} | ${l.label} | ${n(r?.rps)} | ${mib} | ${r?.p50 ?? "–"} | ${r?.p99 ?? "–"} | ${us(r)} | ${ratio(r?.rps, h?.rps)} |`;
    }),
  );
  const cpu = (os.cpus()[0]?.model ?? "?").replace(/\s+/g, " ");
  const section = [
    "<!-- stream-bench:start -->",
    "## gRPC and TLS passthrough",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} in one run on this project's machine (${os.availableParallelism()} cores, ${cpu}, shared with other work: load average ${load} when the run started; Node ${process.version}) with`,
    `\`BENCH_DURATION=${DURATION} BENCH_ROUNDS=${ROUNDS} npm run bench:streams\` (hack/bench/streams.ts). The figures to read are the ratios against the reference proxy of the same run;`,
    `absolute numbers move with the machine's other work. Every proxy runs 1 worker (nginx \`worker_processes 1\`, haproxy \`nbthread 1\`, \`rauta serve --workers 1\`);`,
    `best of ${ROUNDS} interleaved rounds per target and load; CPU/req is the serving process's CPU time (RAUTA: the worker) per request.`,
    "",
    `gRPC unary: \`h2load -c ${H2_CLIENTS} -m ${H2_STREAMS} -D ${DURATION} -d <one gRPC frame, 100-byte message> -H 'content-type: application/grpc' -H 'te: trailers'\`, h2c prior knowledge, POST ${GRPC_PATH}.`,
    "Backend: a node:http2 h2c server in its own process answering one echoed message and trailers `grpc-status: 0` (checked once through each proxy with a node:http2 client before measuring).",
    "nginx: `grpc_pass` to an upstream with `keepalive 128`; RAUTA: a GRPCRoute to a Service. p50/p99 are from h2load's per-request log (`--log-file`).",
    "",
    "| target | rps | p50 | p99 | CPU/req | ÷ nginx rps | p99 ÷ nginx |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...grpcRows,
    "",
    `- RAUTA vs nginx grpc_pass, rps: ${ratio(rg?.rps, nginx?.rps)} (target ≥ 0.5×) — ${check(rg?.rps, nginx?.rps)}`,
    "",
    `TLS passthrough: \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\` to https://${SNI}:<port>, a Lua \`wrk.resolve\` connecting to 127.0.0.1 (wrk sends the URL's host as SNI; no /etc/hosts entry).`,
    "Backend: nginx terminating TLS (self-signed EC certificate for the name, made with openssl), `return 200` with a 100-byte body, and a 1 MiB static file at /big.",
    `haproxy: \`mode tcp\`, \`tcp-request inspect-delay 5s\`, \`tcp-request content accept if { req_ssl_hello_type 1 }\`, \`use_backend b if { req_ssl_sni -i ${SNI} }\`;`,
    "RAUTA: a TLS listener with `tls.mode: Passthrough` and a TLSRoute for the name to a Service. Each proxy was checked once to answer 200 with the backend's certificate.",
    "New connection per request: wrk with `-H 'Connection: close'` (the backend closes after each response and wrk reconnects: a TCP connect, a TLS handshake and one request each), so rps there is connections/s.",
    "",
    "| target | load | rps | transfer | p50 | p99 | CPU/req | ÷ haproxy |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...tlsRows,
    "",
    ...TLS_LOADS.map(
      l =>
        `- RAUTA vs haproxy, ${l.label}: ${ratio(tls(rt, l.key)?.rps, tls(ha, l.key)?.rps)} (target ≥ 0.5×) — ${check(tls(rt, l.key)?.rps, tls(ha, l.key)?.rps)}`,
    ),
    "",
    `Every round, rps: ${[...rounds.entries()]
      .map(
        ([k, v]) => `${k.replace("|", " ")} ${v.map(x => `${(x / 1000).toFixed(1)}k`).join(", ")}`,
      )
      .join("; ")}.`,
    "<!-- stream-bench:end -->",
  ].join("\n");
  console.log(section);
  if (write) {
    const file = writeBenchmarkSection("stream-bench", section);
    console.error(`bench: wrote ${path.relative(ROOT, file)}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// a one-second keep-alive load first, so every target starts warm (RAUTA's JIT, TLS state)
function runTlsWrkWarm(port: number, resolver: string) {
  execFileSync(
    "wrk",
    ["-t1", `-c${CONNECTIONS}`, "-d1s", "-s", resolver, `https://${SNI}:${port}/`],
    { stdio: "ignore" },
  );
}

if (process.argv[2] === "grpc-backend") grpcBackend(Number(process.argv[3]));
else await main();
