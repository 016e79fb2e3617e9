// `npm run deploy:local`: exactly the user's install steps, against the running hack/cluster:
//   1. the Gateway API CRDs of the channel asked for (standard unless told), and the
//      RautaPlugin CRD,
//   2. `npx pepr deploy --yes` (the Pepr module: admission + watcher controller, scoped RBAC),
//   3. one `kubectl apply` of proxy/deploy/base.yaml + the proxy DaemonSet,
// then waits until GatewayClass rauta is Accepted and the proxy is Ready.
//
// Local specifics, all outside the user's manifests: the proxy pod claims the first addresses
// of the harness's Gateway pool (annotation read by the process node, which puts them on the
// bridge), and the controller hands those same addresses to Gateways (RAUTA_ADDRESS_POOL).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import {
  clusterHandle,
  ensureCluster,
  eventually,
} from "../../test/integration/helpers/cluster.ts";
import type { Cluster } from "../../test/integration/helpers/cluster.ts";
import { repoRoot } from "../cluster/config.ts";
import { sleepSync } from "../cluster/util.ts";

// 40 addresses: the conformance suite runs more Gateways at once than a handful (a Gateway the
// pool cannot serve waits with Programmed False, AddressNotAssigned). .250 and up stay free for
// cluster.spec's own pool test.
export const LOCAL_GATEWAY_ADDRESSES = Array.from({ length: 40 }, (_, i) => `10.244.0.${200 + i}`);
const GATEWAY_ADDRESSES_ANNOTATION = "rauta.dev/gateway-addresses";
// The process node runs the proxy from this checkout: a hash of its sources in the pod template
// rolls the proxy when they changed, as a new image tag would on a real cluster.
const SOURCE_HASH_ANNOTATION = "rauta.dev/source-hash";

function proxySourceHash(): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    if (!existsSync(join(repoRoot, dir))) return;
    for (const name of readdirSync(join(repoRoot, dir)).sort()) {
      const rel = `${dir}/${name}`;
      if (statSync(join(repoRoot, rel)).isDirectory()) walk(rel);
      else
        h.update(rel)
          .update("\0")
          .update(readFileSync(join(repoRoot, rel)));
    }
  };
  for (const dir of ["proxy", "plugins-sdk/builtins/dist"]) walk(dir);
  h.update(readFileSync(join(repoRoot, "package-lock.json")));
  return h.digest("hex").slice(0, 16);
}

export type GatewayApiChannel = "standard" | "experimental";
const SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io";

/**
 * Makes the cluster's Gateway API CRDs the given channel's (crds/gateway-api/<channel>, the
 * release's install files); true when the channel changed. Upstream's safe-upgrades admission
 * policy refuses experimental CRDs over standard ones, so that switch deletes it first and
 * leaves it out, as its message tells a user to; going back to standard installs it again.
 */
export function installGatewayApiCrds(cluster: Cluster, channel: GatewayApiChannel): boolean {
  const current = cluster.kubectlResult([
    "get",
    "crd",
    "httproutes.gateway.networking.k8s.io",
    "-o",
    "jsonpath={.metadata.annotations.gateway\\.networking\\.k8s\\.io/channel}",
  ]).stdout;
  const dir = join(repoRoot, "crds/gateway-api", channel);
  const files = readdirSync(dir)
    .filter(f => f.endsWith(".yaml") && (channel === "standard" || !f.includes("vap_")))
    .sort();
  if (channel === "experimental")
    for (const kind of ["validatingadmissionpolicybinding", "validatingadmissionpolicy"])
      cluster.kubectl(["delete", "--ignore-not-found", kind, SAFE_UPGRADES]);
  const apply = [
    "apply",
    "--server-side",
    "--force-conflicts",
    "-o",
    "name",
    ...files.flatMap(f => ["-f", join(dir, f)]),
  ];
  // The API server drops a deleted admission policy asynchronously: until it has, the policy
  // still refuses the experimental CRDs (seen in CI), so that refusal is waited out (60 s).
  let result = cluster.kubectlResult(apply);
  for (
    const deadline = Date.now() + 60_000;
    result.code !== 0 && result.stderr.includes(SAFE_UPGRADES) && Date.now() < deadline;
    result = cluster.kubectlResult(apply)
  )
    sleepSync(1_000);
  if (result.code !== 0)
    throw new Error(`kubectl ${apply.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  const applied = result.stdout;
  const crds = applied.split("\n").filter(l => l.startsWith("customresourcedefinition"));
  cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...crds]);
  if (channel === "standard") {
    // the experimental-only kinds (gateway.networking.x-k8s.io) have no standard version to
    // replace them, and the suite refuses a cluster with CRDs of both channels
    const all = cluster.getJson<{
      items: Array<{ metadata: { name: string; annotations?: Record<string, string> } }>;
    }>(["crd"]);
    const leftovers = all.items
      .filter(c => c.metadata.annotations?.["gateway.networking.k8s.io/channel"] === "experimental")
      .map(c => `crd/${c.metadata.name}`);
    if (leftovers.length > 0) cluster.kubectl(["delete", "--ignore-not-found", ...leftovers]);
  }
  return current.trim() !== channel;
}

function step(message: string): void {
  process.stderr.write(`deploy:local: ${message}\n`);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): void {
  const result = spawnSync(command, args, {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 600_000,
  });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(" ")} exited ${result.status ?? result.signal}`);
}

interface DaemonSetLike {
  kind?: string;
  spec: { template: { metadata: { annotations?: Record<string, string> } } };
}

// The proxy DaemonSet as shipped, plus the annotation that makes the process node give the pod
// the local Gateway addresses.
function localProxyManifests(): string {
  const docs = parseAllDocuments(
    readFileSync(join(repoRoot, "proxy/deploy/proxy-daemonset.yaml"), "utf8"),
  ).map(d => d.toJS() as DaemonSetLike);
  for (const doc of docs) {
    if (doc?.kind !== "DaemonSet") continue;
    doc.spec.template.metadata.annotations = {
      ...doc.spec.template.metadata.annotations,
      [GATEWAY_ADDRESSES_ANNOTATION]: LOCAL_GATEWAY_ADDRESSES.join(","),
      [SOURCE_HASH_ANNOTATION]: proxySourceHash(),
    };
  }
  return docs.map(d => stringify(d)).join("---\n");
}

/** RAUTA's own CRDs (crds/*.yaml besides the vendored Gateway API ones), established. */
export const RAUTA_CRDS = [
  ["crds/rautaplugin.yaml", "rautaplugins.rauta.io"],
  ["crds/backendtrafficpolicy.yaml", "backendtrafficpolicies.rauta.io"],
  ["crds/clienttrafficpolicy.yaml", "clienttrafficpolicies.rauta.io"],
  ["crds/securitypolicy.yaml", "securitypolicies.rauta.io"],
] as const;

export function installRautaCrds(cluster: Pick<Cluster, "kubectl">): void {
  for (const [file] of RAUTA_CRDS)
    cluster.kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, file)]);
  cluster.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    ...RAUTA_CRDS.map(([, name]) => `crd/${name}`),
  ]);
}

export async function deployLocal(options: { channel?: GatewayApiChannel } = {}): Promise<Cluster> {
  step("cluster");
  const cluster = await ensureCluster();
  // a previous undeploy may still be deleting the namespaces this install writes to
  await namespacesSettled(cluster);
  const channel = options.channel ?? "standard";
  step(`Gateway API CRDs, ${channel} channel`);
  // the controller reads the channel when it becomes leader: a switch restarts it below
  const channelChanged = installGatewayApiCrds(cluster, channel);
  // The project's Node first on PATH: pepr's bin runs on whatever `node` it finds.
  const env = {
    ...process.env,
    KUBECONFIG: cluster.kubeconfig,
    PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
  };
  step("RAUTA CRDs");
  installRautaCrds(cluster);
  step("npx pepr deploy --yes");
  run(join(repoRoot, "node_modules/.bin/pepr"), ["deploy", "--yes"], env);
  step("controller address pool");
  cluster.kubectl([
    "set",
    "env",
    "-n",
    "pepr-system",
    "deployment/pepr-rauta-watcher",
    `RAUTA_ADDRESS_POOL=${LOCAL_GATEWAY_ADDRESSES.join(",")}`,
  ]);
  if (channelChanged)
    cluster.kubectl(["rollout", "restart", "-n", "pepr-system", "deployment/pepr-rauta-watcher"]);
  step("kubectl apply proxy/deploy/base.yaml + proxy DaemonSet");
  cluster.kubectl(["apply", "-f", join(repoRoot, "proxy/deploy/base.yaml")]);
  cluster.apply(localProxyManifests());
  cluster.kubectl([
    "rollout",
    "status",
    "-n",
    "pepr-system",
    "deployment/pepr-rauta-watcher",
    "--timeout=180s",
  ]);
  cluster.kubectl([
    "rollout",
    "status",
    "-n",
    "pepr-system",
    "deployment/pepr-rauta",
    "--timeout=180s",
  ]);
  step("waiting for GatewayClass rauta to be Accepted");
  await eventually("GatewayClass rauta Accepted", 180_000, () => {
    const gatewayClass = cluster.getJson<{
      status?: { conditions?: Array<{ type: string; status: string }> };
    }>(["gatewayclass", "rauta"]);
    return gatewayClass.status?.conditions?.some(c => c.type === "Accepted" && c.status === "True")
      ? true
      : undefined;
  });
  cluster.kubectl([
    "rollout",
    "status",
    "-n",
    "rauta-system",
    "daemonset/rauta-proxy",
    "--timeout=180s",
  ]);
  step("done: GatewayClass rauta is Accepted and the proxy is Ready");
  return cluster;
}

/**
 * Until neither of the install's namespaces is terminating (gone, or there and active): a
 * namespace being deleted refuses new objects, so an install after an undeploy waits for this.
 */
export async function namespacesSettled(cluster: Cluster = clusterHandle()): Promise<void> {
  await eventually("rauta-system and pepr-system to finish terminating", 180_000, () => {
    // (with --ignore-not-found and neither found, kubectl prints nothing at all)
    const out = cluster.kubectl([
      "get",
      "namespace",
      "rauta-system",
      "pepr-system",
      "--ignore-not-found",
      "-o",
      "json",
    ]);
    const items = out.trim()
      ? (JSON.parse(out) as { items: Array<{ status?: { phase?: string } }> }).items
      : [];
    return items.every(n => n.status?.phase !== "Terminating") ? true : undefined;
  });
}

export function undeployLocal(cluster: Cluster = clusterHandle()): void {
  cluster.kubectlResult([
    "delete",
    "--ignore-not-found",
    "--wait=false",
    "-f",
    join(repoRoot, "proxy/deploy/base.yaml"),
  ]);
  cluster.kubectlResult([
    "delete",
    "--ignore-not-found",
    "namespace",
    "pepr-system",
    "--wait=false",
  ]);
  cluster.kubectlResult([
    "delete",
    "--ignore-not-found",
    "validatingwebhookconfiguration",
    "pepr-rauta",
  ]);
}

if (import.meta.main) {
  try {
    const cluster = await deployLocal();
    console.log(`export KUBECONFIG=${cluster.kubeconfig}`);
  } catch (error) {
    process.stderr.write(
      `deploy:local failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
