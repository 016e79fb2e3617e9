// The control plane as `control-plane-dev.spec.ts` runs it, for suites that need it running:
// `npx pepr dev` (controller + admission webhook in one local process, the webhook at
// https://localhost:3000) and `rauta proxy --config-source=kubernetes` as a local process with
// worker processes, serving Gateways on loopback addresses from RAUTA_ADDRESS_POOL.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import type { Cluster } from "./cluster.ts";
import { ensureCluster, eventually, repoRoot } from "./cluster.ts";
import { freePort } from "./workloads.ts";
import { installRautaCrds, namespacesSettled } from "../../../hack/deploy/local.ts";

export interface DevControlPlaneOptions {
  /** loopback addresses the controller hands to Gateways, in order */
  addresses: string[];
  /** the proxy's heartbeat identity (what RautaPlugin Ready names) */
  identity?: string;
  workers?: number;
}

export interface DevControlPlane {
  k: Cluster;
  identity: string;
  /** the tails of both processes' output, for failure messages */
  logs(): string;
  stop(): Promise<void>;
}

function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
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

export async function startDevControlPlane(
  options: DevControlPlaneOptions,
): Promise<DevControlPlane> {
  const k = await ensureCluster();
  const identity = options.identity ?? "dev-proxy";
  const env = {
    ...process.env,
    KUBECONFIG: k.kubeconfig,
    PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
    RAUTA_NAMESPACE: "rauta-system",
    RAUTA_ADDRESS_POOL: options.addresses.join(","),
    LOG_LEVEL: "info",
  };
  // A suite before this one may have just uninstalled RAUTA (control-plane.spec.ts ends with
  // undeployLocal, deleting both namespaces without waiting): nothing can be created in a
  // namespace that is still terminating.
  await namespacesSettled(k);
  installRautaCrds(k);
  k.kubectl(["apply", "-f", join(repoRoot, "proxy/deploy/base.yaml")]);
  let devLog = "";
  let proxyLog = "";
  const dev = spawn(
    join(repoRoot, "node_modules/.bin/pepr"),
    ["dev", "--host", "localhost", "--yes"],
    {
      cwd: repoRoot,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  dev.stdout.on("data", c => (devLog = (devLog + c).slice(-200_000)));
  dev.stderr.on("data", c => (devLog = (devLog + c).slice(-200_000)));
  const proxy = spawn(
    join(repoRoot, "node_modules/.bin/node"),
    [
      join(repoRoot, "proxy/bin/rauta.ts"),
      "proxy",
      "--config-source",
      "kubernetes",
      "--namespace",
      "rauta-system",
      "--identity",
      identity,
      "--metrics-port",
      String(await freePort()),
      "--workers",
      String(options.workers ?? 2),
    ],
    { cwd: repoRoot, env, detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  proxy.stderr.on("data", c => (proxyLog = (proxyLog + c).slice(-200_000)));
  const handle: DevControlPlane = {
    k,
    identity,
    logs: () =>
      `--- pepr dev output (tail) ---\n${devLog.slice(-4000)}\n--- proxy log (tail) ---\n${proxyLog.slice(-4000)}`,
    stop: async () => {
      await stop(proxy, "SIGTERM");
      await stop(dev, "SIGINT");
    },
  };
  await eventually("GatewayClass rauta Accepted by the dev controller", 300_000, () => {
    const gatewayClass = k.getJson<{
      status?: { conditions?: Array<{ type: string; status: string }> };
    }>(["gatewayclass", "rauta"]);
    return gatewayClass.status?.conditions?.some(c => c.type === "Accepted" && c.status === "True")
      ? true
      : undefined;
  }).catch(async (error: unknown) => {
    const logs = handle.logs();
    await handle.stop();
    throw new Error(`${String(error)}\n${logs}`);
  });
  return handle;
}
