// `rauta proxy --config-source file`: serves a published config from a file, reloads it when
// the file changes, keeps the last good config when the file turns bad, drains on SIGTERM.
import { expect } from "chai";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compile, emptySnapshot } from "../../../capabilities/compiler/index.ts";
import type { Snapshot } from "../../../capabilities/compiler/index.ts";
import { encodeConfigMaps } from "../../../proxy/config/index.ts";
import { readConfigPath, referencedSecretBundle } from "../../../proxy/cli/proxy-command.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { SecretData, TlsKeyPair } from "../../../proxy/tls/secrets.ts";
import { DEFAULT_PROXY_V8_FLAGS } from "../../../proxy/runtime/v8-flags.ts";
import { freePort } from "../../helpers/net.ts";

const repo = resolve(import.meta.dirname, "../../..");

function snapshot(listenerPort: number, backendPort: number, prefix: string): Snapshot {
  return {
    ...emptySnapshot(),
    gatewayClasses: [
      { metadata: { name: "rauta" }, spec: { controllerName: "rauta.io/gateway-controller" } },
    ],
    gateways: [
      {
        metadata: { name: "gw", namespace: "default" },
        spec: {
          gatewayClassName: "rauta",
          listeners: [{ name: "http", port: listenerPort, protocol: "HTTP" }],
        },
      },
    ],
    httpRoutes: [
      {
        metadata: { name: "r", namespace: "default" },
        spec: {
          parentRefs: [{ name: "gw" }],
          rules: [
            {
              matches: [{ path: { type: "PathPrefix", value: prefix } }],
              backendRefs: [{ name: "b", port: 80 }],
            },
          ],
        },
      },
    ],
    services: [{ metadata: { name: "b", namespace: "default" }, spec: { ports: [{ port: 80 }] } }],
    endpointSlices: [
      {
        metadata: {
          name: "b-1",
          namespace: "default",
          labels: { "kubernetes.io/service-name": "b" },
        },
        addressType: "IPv4",
        ports: [{ port: backendPort }],
        endpoints: [{ addresses: ["127.0.0.1"] }],
      },
    ],
  };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, res => {
        let body = "";
        res.on("data", c => (body += c));
        res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/**
 * `rauta proxy --config-source file` on a config file written by `write(prefix, generation)`:
 * one listener on 127.0.0.1:listenerPort routing `prefix` to the backend.
 */
async function fileProxy(fileName: string, backendPort: number, extraArgs: string[] = []) {
  const [listenerPort, metricsPort] = [await freePort(), await freePort()];
  const file = join(dir, fileName);
  const write = (prefix: string, generation: number) =>
    writeFileSync(
      file,
      JSON.stringify(
        compile(snapshot(listenerPort, backendPort, prefix), {
          generation,
          defaultAddress: "127.0.0.1",
        }).config,
      ),
    );
  write("/a", 1);
  const proc = spawn(
    join(repo, "node_modules/.bin/node"),
    [
      join(repo, "proxy/bin/rauta.ts"),
      "proxy",
      "--config-source",
      "file",
      "--config",
      file,
      "--metrics-port",
      String(metricsPort),
      ...extraArgs,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const log = { stderr: "" };
  proc.stderr!.on("data", c => (log.stderr += c));
  return { proc, listenerPort, metricsPort, file, write, log };
}

let dir: string;

describe("rauta proxy --config-source file", function () {
  this.timeout(60_000);
  let backend: http.Server;
  let child: ChildProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "rauta-proxy-"));
    backend = http
      .createServer((req, res) => res.end(`backend saw ${req.url}`))
      .listen(0, "127.0.0.1");
    await new Promise(r => backend.once("listening", r));
  });
  after(() => {
    child?.kill("SIGKILL");
    backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads a mounted ConfigMap directory (manifest.json + config.json)", () => {
    const config = compile(snapshot(8080, 9000, "/"), { generation: 3 }).config;
    const { manifest } = encodeConfigMaps(config, { namespace: "rauta-system" });
    const mount = join(dir, "mount");
    mkdirSync(mount);
    for (const [key, value] of Object.entries(manifest.data!))
      writeFileSync(join(mount, key), value);
    expect(readConfigPath(mount)).to.deep.equal(config);
  });

  it("serves, hot-reloads on change, keeps the last good config on a broken file, drains on SIGTERM", async () => {
    const { proc, listenerPort, metricsPort, write, file, log } = await fileProxy(
      "config.json",
      (backend.address() as AddressInfo).port,
    );
    child = proc;
    await eventually(
      async () => (await get(listenerPort, "/a/x")).body === "backend saw /a/x",
      "generation 1 to serve /a",
    );
    expect((await get(listenerPort, "/b")).status).to.equal(404);
    expect((await get(metricsPort, "/readyz")).status).to.equal(200);
    // re-executed in place with the proxy's heap settings: the PID we started serves
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0");
    for (const flag of [...DEFAULT_PROXY_V8_FLAGS, "--expose-gc"]) expect(cmdline).to.include(flag);

    write("/b", 2);
    await eventually(
      async () => (await get(listenerPort, "/b")).status === 200,
      "generation 2 to serve /b",
    );
    expect((await get(listenerPort, "/a")).status).to.equal(404);

    writeFileSync(file, "{ this is not json");
    await eventually(
      async () => log.stderr.includes("cannot read config; still serving the previous one"),
      "the broken file to be reported",
    );
    expect((await get(listenerPort, "/b")).body).to.equal("backend saw /b");

    const exited = new Promise<number | null>(r => child!.once("exit", code => r(code)));
    child.kill("SIGTERM");
    expect(await exited).to.equal(0);
    child = undefined;
  });

  it("--workers 2: both serve; a killed worker is replaced; reloads reach every worker; metrics aggregated; drains", async () => {
    const { proc, listenerPort, metricsPort, write, file, log } = await fileProxy(
      "config-workers.json",
      (backend.address() as AddressInfo).port,
      ["--workers", "2"],
    );
    child = proc;
    const workerPids = () =>
      readFileSync(`/proc/${child!.pid}/task/${child!.pid}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number)
        .filter(pid => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("serve-worker");
          } catch {
            return false;
          }
        });
    await eventually(
      async () => (await get(listenerPort, "/a/x")).body === "backend saw /a/x",
      "generation 1 to serve /a",
    );
    await eventually(async () => workerPids().length === 2, "two workers");
    // both listening before one is killed: a worker that has not bound yet leaves the other
    // alone with the port, and killing that one would refuse connections until its replacement
    // binds (Node's cluster closes a shared handle when its last worker goes)
    const bound = () =>
      new Set(
        [...log.stderr.matchAll(/"message":"listener bound"[^\n]*?"pid":(\d+)/g)].map(m => m[1]),
      );
    await eventually(
      async () => workerPids().every(pid => bound().has(String(pid))),
      "both workers bound",
    );
    const [first] = workerPids();
    // the workers run with the proxy's heap settings too
    const cmdline = readFileSync(`/proc/${first}/cmdline`, "utf8").split("\0");
    for (const flag of DEFAULT_PROXY_V8_FLAGS) expect(cmdline).to.include(flag);

    process.kill(first!, "SIGKILL");
    // the signal lands asynchronously: a connection the dying worker accepted first is reset,
    // which says nothing about the survivor
    await eventually(async () => !existsSync(`/proc/${first}`), "the killed worker to be gone");
    for (let i = 0; i < 20; i++) expect((await get(listenerPort, "/a/x")).status).to.equal(200);
    await eventually(
      async () => workerPids().length === 2 && !workerPids().includes(first!),
      "a replacement worker",
    );
    expect(log.stderr).to.include("worker exited; starting a replacement");

    write("/b", 2);
    // every connection is new (agent: false), so the kernel spreads them over both workers
    await eventually(async () => {
      for (let i = 0; i < 10; i++) if ((await get(listenerPort, "/b")).status !== 200) return false;
      return true;
    }, "generation 2 on every worker");
    expect((await get(listenerPort, "/a")).status).to.equal(404);

    // the primary validates against the schema (workers never load zod) and refuses this one
    writeFileSync(file, JSON.stringify({ apiVersion: "rauta.io/v1alpha1", generation: 3 }));
    await eventually(
      async () => log.stderr.includes("refused config; still serving the previous one"),
      "the schema-invalid config to be refused",
    );
    expect((await get(listenerPort, "/b")).status).to.equal(200);

    const metrics = await get(metricsPort, "/metrics");
    expect(metrics.body).to.match(/rauta_config_generation 2/);
    expect((await get(metricsPort, "/readyz")).status).to.equal(200);

    const exited = new Promise<number | null>(r => child!.once("exit", code => r(code)));
    child.kill("SIGTERM");
    expect(await exited).to.equal(0);
    child = undefined;
  });
});

describe("referencedSecretBundle", () => {
  it("hands workers exactly the key pairs the config's listeners and TLS clusters reference and the credentials its routes check, once each, ignoring malformed input", () => {
    const pair = { cert: "C", key: "K" } as unknown as TlsKeyPair;
    const provider = new StaticSecretProvider(new Map([["rauta-system/a", pair]]));
    const config = {
      listeners: [
        { tls: { certificates: [{ secretRef: { namespace: "rauta-system", name: "a" } }] } },
        { tls: { certificates: [{ secretRef: { namespace: "rauta-system", name: "missing" } }] } },
        { tls: { certificates: [{ secretRef: { name: 1 } }, null] } },
        {},
      ],
      clusters: [
        { tls: { clientCertificate: { namespace: "rauta-system", name: "client" } } },
        { tls: { clientCertificate: { namespace: "rauta-system", name: "a" } } },
        { tls: { clientCertificate: "x" } },
        {},
      ],
    };
    const client = { cert: "CC", key: "CK" } as unknown as TlsKeyPair;
    provider.replace(
      new Map([
        ["rauta-system/a", pair],
        ["rauta-system/client", client],
      ]),
    );
    const users = { ".htpasswd": "alice:{SHA}x" };
    const keys = { alice: "k1" };
    provider.replace(
      new Map([
        ["rauta-system/a", pair],
        ["rauta-system/client", client],
      ]),
      new Map<string, SecretData>([
        ["rauta-system/users", users],
        ["rauta-system/keys", keys],
        ["rauta-system/unused", { x: "y" }],
      ]),
    );
    const withRoutes = {
      ...config,
      routes: [
        { basicAuth: { secretRef: { namespace: "rauta-system", name: "users" } } },
        {
          apiKeyAuth: {
            secretRefs: [
              { namespace: "rauta-system", name: "keys" },
              { namespace: "rauta-system", name: "users" },
              { namespace: "rauta-system", name: "missing" },
              7,
            ],
          },
        },
        { basicAuth: "x" },
        null,
      ],
    };
    expect(referencedSecretBundle(withRoutes, provider)).to.deep.equal({
      keyPairs: [
        ["rauta-system/a", pair],
        ["rauta-system/client", client],
      ],
      credentials: [
        ["rauta-system/users", users],
        ["rauta-system/keys", keys],
      ],
    });
    expect(referencedSecretBundle(null, provider)).to.deep.equal({ keyPairs: [], credentials: [] });
    expect(referencedSecretBundle({ listeners: "x", routes: 3 }, provider)).to.deep.equal({
      keyPairs: [],
      credentials: [],
    });
  });
});
