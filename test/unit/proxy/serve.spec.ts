// `rauta serve` end to end: the real CLI as a child process with 2 workers on Gateway API YAML,
// hot reload on edit, a broken edit reported while the last good config keeps serving, metrics,
// a crashed worker replaced, graceful SIGTERM.
import { expect } from "chai";
import { spawn, execFileSync } from "node:child_process";
import https from "node:https";
import type tls from "node:tls";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startEcho, freePort, get, sleep, rawExchange } from "./helpers.ts";
import type { Echo } from "./helpers.ts";

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

describe("rauta serve (standalone, real CLI)", function () {
  this.timeout(40_000);
  let dir: string, api: Echo, web: Echo, port: number, metricsPort: number, child: ChildProcess;
  let stderr = "";

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-serve-"));
    api = await startEcho("api");
    web = await startEcho("web");
    port = await freePort();
    metricsPort = await freePort();
    fs.writeFileSync(path.join(dir, "gateway.yaml"), gatewayYaml(port));
    fs.writeFileSync(path.join(dir, "backends.yaml"), backendsYaml(api.port, web.port));
    child = spawn(
      process.execPath,
      [
        path.join(root, "proxy/bin/rauta.ts"),
        "serve",
        "-f",
        dir,
        "--workers",
        "2",
        "--metrics-port",
        String(metricsPort),
        "--address",
        "127.0.0.1",
      ],
      {
        cwd: root,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, RAUTA_LOG_LEVEL: "info" },
      },
    );
    child.stderr!.on("data", d => (stderr += d));
    await until(
      async () => ((await get(metricsPort, "/readyz")).status === 200 ? true : undefined),
      20_000,
      "readyz",
    );
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
    const before = stderr.length;
    fs.writeFileSync(
      path.join(dir, "gateway.yaml"),
      gatewayYaml(port).replace("type: PathPrefix, value: /api", "type: NoSuchType, value: /api"),
    );
    await until(
      async () => (stderr.slice(before).includes("still serving") ? true : undefined),
      10_000,
      "the error report",
    );
    const report = stderr.slice(before);
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
    expect(stderr).to.not.contain("worker exited");
    expect((await get(metricsPort, "/metrics")).body).to.match(/^rauta_worker_restarts_total 0$/m);
  });

  it("replaces a crashed worker while the other keeps serving", async () => {
    const pids = [
      ...new Set([...stderr.matchAll(/"listener bound"[^\n]*"pid":(\d+)/g)].map(m => Number(m[1]))),
    ];
    expect(pids.length).to.be.greaterThanOrEqual(2);
    process.kill(pids[0]!, "SIGKILL");
    for (let i = 0; i < 20; i++) expect((await get(port, "/api/x")).status).to.equal(200);
    await until(
      async () => (stderr.includes("worker exited; starting a replacement") ? true : undefined),
      5000,
      "the replacement",
    );
    await until(
      async () =>
        [...stderr.matchAll(/"listener bound"[^\n]*"pid":(\d+)/g)].length >= 3 ? true : undefined,
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
    expect(stderr).to.contain("SIGTERM: draining");
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
    const child = spawn(
      process.execPath,
      [
        path.join(root, "proxy/bin/rauta.ts"),
        "serve",
        "-f",
        path.join(dir, "all.yaml"),
        "--workers",
        "0",
        "--metrics-port",
        String(metricsPort),
        "--address",
        "127.0.0.1",
      ],
      {
        cwd: root,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr!.on("data", d => (stderr += d));
    try {
      await until(
        async () => ((await get(metricsPort, "/readyz")).status === 200 ? true : undefined),
        20_000,
        "readyz",
      );
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
      throw new Error(`${(err as Error).message}\n${stderr}`);
    } finally {
      const exited = new Promise(r => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await api.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
