// `npx pepr dev` against hack/cluster: the controller and admission webhook run as one local
// process (the webhook at https://localhost:3000), the proxy runs locally with
// --config-source=kubernetes and two worker processes (Programmed waits until both serve the
// generation), and a Gateway gets a loopback address from the pool.
import { expect } from "chai";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { Cluster } from "./helpers/cluster.ts";
import { ensureCluster, eventually, repoRoot, uniqueNamespace } from "./helpers/cluster.ts";
import { echoApp, freePort, httpGet } from "./helpers/workloads.ts";
import { installRautaCrds } from "../../hack/deploy/local.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
}

const GATEWAY_ADDRESS = "127.0.0.200";

const get = (host: string, path: string) => httpGet(GATEWAY_ADDRESS, 80, host, path);

function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
      resolve();
    }, 20_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.pid) process.kill(-child.pid, signal);
  });
}

describe("control plane in `npx pepr dev` mode", function () {
  this.timeout(15 * 60_000);
  let k: Cluster;
  let dev: ChildProcess | undefined;
  let proxy: ChildProcess | undefined;
  const ns = uniqueNamespace("it-dev");
  let devLog = "";
  let proxyLog = "";

  before(async () => {
    k = await ensureCluster();
    const env = {
      ...process.env,
      KUBECONFIG: k.kubeconfig,
      PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
      RAUTA_NAMESPACE: "rauta-system",
      RAUTA_ADDRESS_POOL: GATEWAY_ADDRESS,
      LOG_LEVEL: "info",
    };
    installRautaCrds(k);
    k.kubectl(["apply", "-f", join(repoRoot, "proxy/deploy/base.yaml")]);
    k.kubectl(["create", "namespace", ns]);
    dev = spawn(join(repoRoot, "node_modules/.bin/pepr"), ["dev", "--host", "localhost", "--yes"], {
      cwd: repoRoot,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    dev.stdout!.on("data", c => (devLog += c));
    dev.stderr!.on("data", c => (devLog += c));
    const metricsPort = await freePort();
    proxy = spawn(
      join(repoRoot, "node_modules/.bin/node"),
      [
        join(repoRoot, "proxy/bin/rauta.ts"),
        "proxy",
        "--config-source",
        "kubernetes",
        "--namespace",
        "rauta-system",
        "--identity",
        "dev-proxy",
        "--metrics-port",
        String(metricsPort),
        "--workers",
        "2",
      ],
      { cwd: repoRoot, env, detached: true, stdio: ["ignore", "ignore", "pipe"] },
    );
    proxy.stderr!.on("data", c => (proxyLog += c));
    await eventually("GatewayClass rauta Accepted by the dev controller", 300_000, () => {
      const gatewayClass = k.getJson<{ status?: { conditions?: Condition[] } }>([
        "gatewayclass",
        "rauta",
      ]);
      return gatewayClass.status?.conditions?.some(
        c => c.type === "Accepted" && c.status === "True",
      )
        ? true
        : undefined;
    }).catch(error => {
      throw new Error(`${String(error)}\n--- pepr dev output (tail) ---\n${devLog.slice(-4000)}`);
    });
  });

  after(async () => {
    k?.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
    await stop(proxy, "SIGTERM");
    await stop(dev, "SIGINT");
  });

  it("programs a Gateway and routes through the local proxy to an echo pod", async () => {
    k.apply(
      `${echoApp("echo")}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
      ns,
    );
    await eventually("Gateway Programmed with the pool address", 120_000, () => {
      const gateway = k.getJson<{
        status?: { addresses?: Array<{ value: string }>; conditions?: Condition[] };
      }>(["gateway", "gw", "-n", ns]);
      const programmed = gateway.status?.conditions?.find(c => c.type === "Programmed");
      return programmed?.status === "True" &&
        gateway.status?.addresses?.[0]?.value === GATEWAY_ADDRESS
        ? true
        : undefined;
    }).catch(error => {
      throw new Error(`${String(error)}\n--- proxy log (tail) ---\n${proxyLog.slice(-3000)}`);
    });
    const response = await eventually("traffic to the echo pod", 120_000, async () => {
      const r = await get("anything.example.com", "/dev");
      return r?.status === 200 ? r : undefined;
    });
    expect((JSON.parse(response.body) as { namespace: string }).namespace).to.equal(ns);
  });

  it("serves admission from the dev process", () => {
    const rejected = k.kubectlResult(
      ["apply", "-n", ns, "-f", "-"],
      `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/(?=x)"}}]
    backendRefs: [{name: echo, port: 8080}]
`,
    );
    expect(rejected.code).to.not.equal(0);
    expect(rejected.stderr).to.include(
      `HTTPRoute ${ns}/bad: spec.rules[0].matches[0].path.value: regular expression "/(?=x)" is not valid RE2 (linear-time) syntax`,
    );
  });
});
