// `rauta serve` end to end: the real CLI as a child process with 2 workers on Gateway API YAML,
// hot reload on edit, a broken edit reported while the last good config keeps serving, metrics,
// a crashed worker replaced, graceful SIGTERM.
import { expect } from "chai";
import { spawn, execFileSync } from "node:child_process";
import http2 from "node:http2";
import https from "node:https";
import tls from "node:tls";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEcho, freePort, get, sleep, rawExchange } from "./helpers.ts";
import type { Echo, EchoBody } from "./helpers.ts";
import { frame, grpcCall } from "../../helpers/grpc.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function gatewayYaml(port: number, extraRule = ""): string {
  const example = fs.readFileSync(path.join(root, "examples/gateway.yaml"), "utf8");
  return example
    .replace("port: 8080", `port: ${port}`)
    .replace("  rules:\n", `  rules:\n${extraRule}`);
}

function backendsYaml(api: number, web: number): string {
  return fs
    .readFileSync(path.join(root, "examples/backends.yaml"), "utf8")
    .replace("port: 9001, protocol", `port: ${api}, protocol`)
    .replace("port: 9002, protocol", `port: ${web}, protocol`);
}

async function until<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** `rauta serve -f <target>` as a child process on 127.0.0.1, and what it writes to stderr. */
function startServe(
  target: string,
  workers: number,
  metricsPort: number,
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(
    process.execPath,
    [
      path.join(root, "proxy/bin/rauta.ts"),
      "serve",
      "-f",
      target,
      "--workers",
      String(workers),
      "--metrics-port",
      String(metricsPort),
      "--address",
      "127.0.0.1",
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } },
  );
  let stderr = "";
  child.stderr!.on("data", d => (stderr += d));
  return { child, stderr: () => stderr };
}

/** Resolves once the serve process answers /readyz. */
const ready = (metricsPort: number) =>
  until(
    async () => ((await get(metricsPort, "/readyz")).status === 200 ? true : undefined),
    20_000,
    "readyz",
  );

describe("rauta serve (standalone, real CLI)", function () {
  this.timeout(40_000);
  let dir: string, api: Echo, web: Echo, port: number, metricsPort: number, child: ChildProcess;
  let stderrOf: () => string = () => "";

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-serve-"));
    api = await startEcho("api");
    web = await startEcho("web");
    port = await freePort();
    metricsPort = await freePort();
    fs.writeFileSync(path.join(dir, "gateway.yaml"), gatewayYaml(port));
    fs.writeFileSync(path.join(dir, "backends.yaml"), backendsYaml(api.port, web.port));
    const served = startServe(dir, 2, metricsPort, { RAUTA_LOG_LEVEL: "info" });
    child = served.child;
    stderrOf = served.stderr;
    await ready(metricsPort);
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise(r => child.once("exit", r));
    }
    await api.close();
    await web.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("routes, redirects and applies header filters from the YAML", async () => {
    const r = await get(port, "/api/users");
    expect(r.status).to.equal(200);
    expect(r.json().backend).to.equal("api");
    expect(r.json().headers["x-demo-request"]).to.equal("added-by-rauta");
    expect(r.headers["x-served-by"]).to.equal("rauta");
    const redirect = await get(port, "/old/users?page=2", { host: "localhost" });
    expect(redirect.status).to.equal(301);
    expect(redirect.headers.location).to.equal(`http://localhost:${port}/api/users?page=2`);
    const rewritten = await get(port, "/v2/hello");
    expect(rewritten.json().backend).to.equal("web");
    expect(rewritten.json().url).to.equal("/hello");
  });

  it("serves /metrics aggregated over the workers", async () => {
    const m = await get(metricsPort, "/metrics");
    expect(m.body).to.match(
      /rauta_requests_total\{route="default\/demo\/rule\/0",code="2xx"\} \d+/,
    );
    expect(m.body).to.match(/rauta_config_generation 1/);
  });

  it("hot-reloads an edit", async () => {
    const rule =
      "    - matches:\n        - path: { type: Exact, value: /new }\n      backendRefs:\n        - { name: api, port: 80 }\n";
    fs.writeFileSync(path.join(dir, "gateway.yaml"), gatewayYaml(port, rule));
    // every worker applies it (they receive it at once; each swaps when it has prepared it)
    await until(
      async () => {
        for (let i = 0; i < 20; i++)
          if ((await get(port, "/new")).json().backend !== "api") return undefined;
        return true;
      },
      10_000,
      "the new route on every worker",
    );
  });

  it("reports a broken edit (file, object, field) and keeps serving the last good config", async () => {
    const before = stderrOf().length;
    fs.writeFileSync(
      path.join(dir, "gateway.yaml"),
      gatewayYaml(port).replace("type: PathPrefix, value: /api", "type: NoSuchType, value: /api"),
    );
    await until(
      async () => (stderrOf().slice(before).includes("still serving") ? true : undefined),
      10_000,
      "the error report",
    );
    const report = stderrOf().slice(before);
    expect(report).to.contain("gateway.yaml");
    expect(report).to.contain("HTTPRoute default/demo");
    expect(report).to.match(/rules\[0\]\.matches\[0\]\.path\.type/);
    expect((await get(port, "/new")).json().backend).to.equal("api");
    expect((await get(port, "/api/x")).status).to.equal(200);
  });

  it("crashes no worker on requests that once did ('GET / HTTP/2.0' over HTTP/1.1)", async () => {
    for (let i = 0; i < 10; i++) {
      const out = await rawExchange(port, "GET /api/x HTTP/2.0\r\nHost: x\r\n\r\n");
      expect(out).to.match(/^HTTP\/1\.1 505 /);
    }
    expect((await get(port, "/api/x")).status).to.equal(200);
    expect(stderrOf()).to.not.contain("worker exited");
    expect((await get(metricsPort, "/metrics")).body).to.match(/^rauta_worker_restarts_total 0$/m);
  });

  it("replaces a crashed worker while the other keeps serving", async () => {
    const pids = [
      ...new Set(
        [...stderrOf().matchAll(/"listener bound"[^\n]*"pid":(\d+)/g)].map(m => Number(m[1])),
      ),
    ];
    expect(pids.length).to.be.greaterThanOrEqual(2);
    process.kill(pids[0]!, "SIGKILL");
    for (let i = 0; i < 20; i++) expect((await get(port, "/api/x")).status).to.equal(200);
    await until(
      async () => (stderrOf().includes("worker exited; starting a replacement") ? true : undefined),
      5000,
      "the replacement",
    );
    await until(
      async () =>
        [...stderrOf().matchAll(/"listener bound"[^\n]*"pid":(\d+)/g)].length >= 3
          ? true
          : undefined,
      10_000,
      "the new worker",
    );
    expect((await get(port, "/new")).json().backend).to.equal("api");
    const m = (await get(metricsPort, "/metrics")).body;
    expect(m).to.match(/^rauta_worker_restarts_total 1$/m);
    expect(m).to.match(/^rauta_worker_crash_loop 0$/m);
  });

  it("drains and exits 0 on SIGTERM", async () => {
    const exited = new Promise<number | null>(r => child.once("exit", code => r(code)));
    child.kill("SIGTERM");
    expect(await exited).to.equal(0);
    expect(stderrOf()).to.contain("SIGTERM: draining");
  });
});

describe("rauta serve with TLS from a kubernetes.io/tls Secret (in-process, --workers 0)", function () {
  this.timeout(40_000);

  it("terminates TLS with the Secret's certificate and routes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-serve-tls-"));
    const api = await startEcho("api");
    const port = await freePort();
    const metricsPort = await freePort();
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path.join(dir, "k"),
        "-out",
        path.join(dir, "c"),
        "-days",
        "1",
        "-subj",
        "/CN=secure.example.com",
        "-addext",
        "subjectAltName=DNS:secure.example.com",
      ],
      { stdio: "ignore" },
    );
    const b64 = (f: string) => fs.readFileSync(path.join(dir, f)).toString("base64");
    const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: rauta }
spec: { controllerName: rauta.io/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: tls, namespace: default }
spec:
  gatewayClassName: rauta
  listeners:
    - name: https
      protocol: HTTPS
      port: ${port}
      hostname: secure.example.com
      tls: { mode: Terminate, certificateRefs: [{ name: secure-cert }] }
---
apiVersion: v1
kind: Secret
metadata: { name: secure-cert, namespace: default }
type: kubernetes.io/tls
data: { tls.crt: ${b64("c")}, tls.key: ${b64("k")} }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r, namespace: default }
spec:
  parentRefs: [{ name: tls }]
  rules: [{ backendRefs: [{ name: api, port: 80 }] }]
---
${backendsYaml(api.port, api.port).split("---").slice(0, 2).join("---")}`;
    fs.writeFileSync(path.join(dir, "all.yaml"), yaml);
    const { child, stderr } = startServe(path.join(dir, "all.yaml"), 0, metricsPort);
    try {
      await ready(metricsPort);
      const { cn, body } = await new Promise<{ cn: string; body: string }>((resolve, reject) => {
        const req = https.get(
          {
            host: "127.0.0.1",
            port,
            path: "/hello",
            servername: "secure.example.com",
            headers: { host: "secure.example.com" },
            rejectUnauthorized: false,
            agent: false,
          },
          res => {
            const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
            let b = "";
            res.on("data", d => (b += d));
            res.on("end", () => resolve({ cn: String(cert.subject?.CN), body: b }));
          },
        );
        req.on("error", reject);
      });
      expect(cn).to.equal("secure.example.com");
      const j = JSON.parse(body);
      expect(j.backend).to.equal("api");
      expect(j.headers["x-forwarded-proto"]).to.equal("https");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${stderr()}`);
    } finally {
      const exited = new Promise(r => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await api.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves the gRPC and TLS passthrough examples (examples/streams.yaml, its demo backends)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-serve-streams-"));
    const ports: number[] = [];
    for (let i = 0; i < 7; i++) ports.push(await freePort());
    const [grpcPort, tlsPort, grpcBackend, tlsBackend, a, b, metricsPort] = ports as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const classDoc = fs
      .readFileSync(path.join(root, "examples/gateway.yaml"), "utf8")
      .split("\n---\n")[0]!;
    const streams = fs
      .readFileSync(path.join(root, "examples/streams.yaml"), "utf8")
      .replace("port: 8081", `port: ${grpcPort}`)
      .replace("port: 8443", `port: ${tlsPort}`)
      .replaceAll("9003", String(grpcBackend))
      .replaceAll("9004", String(tlsBackend));
    fs.writeFileSync(path.join(dir, "all.yaml"), `${classDoc}\n---\n${streams}`);
    const backends = spawn(process.execPath, [path.join(root, "examples/demo-backend.ts")], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        DEMO_API_PORT: String(a),
        DEMO_WEB_PORT: String(b),
        DEMO_GRPC_PORT: String(grpcBackend),
        DEMO_TLS_PORT: String(tlsBackend),
      },
    });
    const { child, stderr } = startServe(dir, 0, metricsPort);
    try {
      await ready(metricsPort);
      // demo.Greeter/SayHello{name: "you"} through the GRPCRoute
      const reply = await until(
        async () => {
          const client = http2.connect(`http://127.0.0.1:${grpcPort}`);
          client.on("error", () => {});
          const call = await grpcCall(client, "/demo.Greeter/SayHello", {
            send: s => void s.end(frame(Buffer.from([0x0a, 3, ...Buffer.from("you")]))),
          });
          client.close();
          return call.trailers["grpc-status"] === "0" ? call : undefined;
        },
        10_000,
        "a gRPC answer",
      );
      expect(reply.messages[0]!.subarray(2).toString()).to.match(
        /^Hello, you! \(from greeter via 2 rauta\)/,
      );
      // a line through the TLSRoute: the backend's own certificate, the client's SNI
      const line = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect(
          {
            host: "127.0.0.1",
            port: tlsPort,
            servername: "echo.tls.localhost",
            ca: fs.readFileSync(path.join(root, "examples/tls/demo.crt")),
          },
          () =>
            socket.once("data", (d: Buffer) => {
              resolve(d.toString());
              socket.end();
            }),
        );
        socket.on("error", reject);
      });
      expect(line).to.match(/^tls-echo: TLS ended here, at the backend, for echo.tls.localhost/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${stderr()}`);
    } finally {
      for (const p of [child, backends]) {
        const exited = new Promise(r => p.once("exit", r));
        p.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("rauta serve on examples/policies.yaml (the README's policy demo)", function () {
  this.timeout(40_000);

  it("rate-limits the demo's /api rule after its burst of 10, with Retry-After, and signs clients in on /admin and /partners", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-serve-policies-"));
    const api = await startEcho("api");
    const web = await startEcho("web");
    const port = await freePort();
    const metricsPort = await freePort();
    fs.writeFileSync(path.join(dir, "gateway.yaml"), gatewayYaml(port));
    fs.writeFileSync(path.join(dir, "backends.yaml"), backendsYaml(api.port, web.port));
    fs.copyFileSync(path.join(root, "examples/policies.yaml"), path.join(dir, "policies.yaml"));
    // one worker: each worker keeps its own buckets
    const { child } = startServe(dir, 1, metricsPort);
    try {
      await ready(metricsPort);
      const replies = [];
      for (let i = 0; i < 12; i++) replies.push(await get(port, "/api/x"));
      expect(replies.map(r => r.status)).to.deep.equal([...Array(10).fill(200), 429, 429]);
      expect(replies[0]!.headers["x-ratelimit-limit"]).to.equal("5");
      expect(replies[11]!.headers["retry-after"]).to.equal("1");
      // the other rules are not limited
      expect((await get(port, "/v2/hello")).status).to.equal(200);

      // basic auth on /admin (the Secret's htpasswd line), API keys on /partners
      const anonymous = await get(port, "/admin/");
      expect(anonymous.status).to.equal(401);
      expect(anonymous.headers["www-authenticate"]).to.equal(
        'Basic realm="demo admins", charset="UTF-8"',
      );
      const admin = await get(port, "/admin/", {
        headers: { authorization: `Basic ${Buffer.from("demo:demo").toString("base64")}` },
      });
      expect(admin.status).to.equal(200);
      expect(admin.json<EchoBody>().headers["x-user"]).to.equal("demo");
      expect((await get(port, "/partners/", { headers: { "x-api-key": "nope" } })).status).to.equal(
        401,
      );
      const partner = (await get(port, "/partners/?api_key=demo-key")).json<EchoBody>();
      expect([partner.headers["x-client-id"], partner.url]).to.deep.equal([
        "partner-a",
        "/partners/",
      ]);
    } finally {
      child.kill("SIGKILL");
      await new Promise(r => child.once("exit", r));
      await api.close();
      await web.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
