// cluster:up / cluster:down / cluster:status for the local dev cluster.
//   node hack/cluster/cluster.ts up      idempotent; last line of output: export KUBECONFIG=<path>
//   node hack/cluster/cluster.ts down    stops every process it started (by PID), removes netns/links
//   node hack/cluster/cluster.ts status  one line per component; exit 0 only if all healthy
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { request } from "node:https";
import { join } from "node:path";
import { binaryPaths, ensureBinaries, ensureHostTools, type Binaries } from "./build.ts";
import {
  apiserverURL,
  clusterSrc,
  net,
  nodeName,
  paths,
  ports,
  repoRoot,
  stateDir,
  versions,
} from "./config.ts";
import { ensurePki, pkiPaths, writeKubeconfig, type Pki } from "./pki.ts";
import {
  log,
  procStartTime,
  readIfExists,
  readPidRecord,
  recordAlive,
  run,
  sleep,
  startDaemon,
  stopPid,
  tail,
  tryRun,
  withLockAsync,
  type PidRecord,
} from "./util.ts";

/** Start order; teardown is the reverse. */
const components = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "node",
] as const;
type Component = (typeof components)[number];

export class ClusterError extends Error {}

function fail(component: string, why: string): never {
  const logFile = join(paths.logs, `${component}.log`);
  throw new ClusterError(
    `${component} failed: ${why}\n--- last lines of ${logFile} ---\n${tail(logFile, 40)}\n---`,
  );
}

/** GET over HTTPS with the admin client cert; resolves to [status, body] or rejects on connect errors. */
export function apiGet(
  url: string,
  pki: Pki = pkiPaths(),
  timeoutMs = 2000,
): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        rejectUnauthorized: url.startsWith(apiserverURL),
        timeout: timeoutMs,
      },
      res => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve([res.statusCode ?? 0, body]));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function httpOk(url: string, pki: Pki): Promise<boolean> {
  try {
    const [code] = await apiGet(url, pki, 1500);
    return code === 200;
  } catch {
    return false;
  }
}

async function etcdHealthy(): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${ports.etcdClient}/health`, {
      signal: AbortSignal.timeout(1500),
    });
    return r.ok && ((await r.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

async function waitFor(
  component: Component,
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    const rec = readPidRecord(paths.pids, component);
    if (!recordAlive(rec)) fail(component, `process exited before ${what}`);
    if (Date.now() > deadline) fail(component, `not ${what} after ${timeoutMs / 1000} s`);
    await sleep(150);
  }
}

export function kubectl(bins: Binaries, args: string[], input?: string): string {
  return run(
    bins.kube,
    ["kubectl", "--kubeconfig", paths.kubeconfig, ...args],
    input === undefined ? {} : { input },
  );
}

/**
 * Fallback routes for our ranges that outlive the bridge: without them, once `down` removes the
 * bridge, a stale kubeconfig or a test would send 10.244.0.1:6443 traffic out of the default
 * route to whatever answers there. Connected routes (metric 0) win while the bridge exists.
 */
export function guardRoutes(): void {
  for (const cidr of [net.podCIDR, net.serviceCIDR]) {
    if (!run("ip", ["route", "show", "type", "unreachable", cidr]).includes(cidr)) {
      run("ip", ["route", "add", "unreachable", cidr, "metric", "1000000"]);
    }
  }
}

function bridgeUp(): void {
  guardRoutes();
  if (!tryRun("ip", ["link", "show", net.bridge]).ok) {
    run("ip", ["link", "add", net.bridge, "type", "bridge"]);
  }
  const addrs = run("ip", ["-o", "-4", "addr", "show", "dev", net.bridge]);
  if (!addrs.includes(`${net.bridgeIP}/`))
    run("ip", ["addr", "add", `${net.bridgeIP}/24`, "dev", net.bridge]);
  run("ip", ["link", "set", net.bridge, "up"]);
  // ClusterIPs are routed onto the bridge: DNAT (the node's iptables rules) rewrites the ones
  // with endpoints; any other stays on the bridge unanswered and never follows the default route.
  if (!run("ip", ["route", "show", net.serviceCIDR]).includes(net.bridge)) {
    run("ip", ["route", "replace", net.serviceCIDR, "dev", net.bridge]);
  }
}

function bridgeDown(): void {
  for (const ns of listNetns()) tryRun("ip", ["netns", "delete", ns]);
  const links = run("ip", ["-o", "link", "show"]).split("\n");
  for (const l of links) {
    const m = /^\d+: ([^:@]+)[@:]/.exec(l);
    if (m?.[1]?.startsWith(net.vethPrefix)) tryRun("ip", ["link", "delete", m[1]]);
  }
  tryRun("ip", ["link", "delete", net.bridge]);
  tryRun("ip", ["route", "delete", net.serviceCIDR, "dev", net.bridge]);
  // The node programs ClusterIP DNAT in its own chains; drop them with their jumps.
  for (const [chain, parents] of [["RAUTA-SERVICES", ["OUTPUT", "PREROUTING"]]] as const) {
    for (const p of parents) while (tryRun("iptables", ["-t", "nat", "-D", p, "-j", chain]).ok);
    tryRun("iptables", ["-t", "nat", "-F", chain]);
    tryRun("iptables", ["-t", "nat", "-X", chain]);
  }
  tryRun("iptables", [
    "-t",
    "nat",
    "-D",
    "POSTROUTING",
    "-s",
    net.podCIDR,
    "-d",
    net.podCIDR,
    "-m",
    "conntrack",
    "--ctstate",
    "DNAT",
    "-j",
    "MASQUERADE",
  ]);
}

export function listNetns(): string[] {
  const r = tryRun("ip", ["netns", "list"]);
  return r.out
    .split("\n")
    .map(l => l.split(" ")[0] ?? "")
    .filter(n => n.startsWith(net.netnsPrefix));
}

function daemonArgs(c: Component, bins: Binaries, pki: Pki): [string, string[]] {
  const kc = paths.kubeconfig;
  switch (c) {
    case "etcd":
      return [
        bins.kube,
        [
          "etcd",
          "--name=rauta",
          `--data-dir=${paths.etcdData}`,
          `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
          `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
          `--initial-cluster=rauta=http://127.0.0.1:${ports.etcdPeer}`,
          // A throwaway dev store: fsync buys nothing but latency here.
          "--unsafe-no-fsync",
          "--log-level=warn",
        ],
      ];
    case "kube-apiserver":
      return [
        bins.kube,
        [
          "kube-apiserver",
          `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
          // Bound to the bridge address only: reachable from the host and from pods, nowhere else.
          `--bind-address=${net.bridgeIP}`,
          `--advertise-address=${net.bridgeIP}`,
          `--secure-port=${ports.apiserver}`,
          `--service-cluster-ip-range=${net.serviceCIDR}`,
          `--client-ca-file=${pki.caCert}`,
          `--tls-cert-file=${pki.apiserverCert}`,
          `--tls-private-key-file=${pki.apiserverKey}`,
          `--service-account-key-file=${pki.saPub}`,
          `--service-account-signing-key-file=${pki.saKey}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          "--authorization-mode=RBAC",
          "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota",
          // No kube-proxy exists, so the API server must dial webhook/aggregated Services by endpoint IP.
          "--enable-aggregator-routing=true",
          // `kubectl logs` goes to the process node's kubelet API, by IP: never a DNS lookup of the
          // node's name, which would leave the machine.
          `--kubelet-client-certificate=${pki.adminCert}`,
          `--kubelet-client-key=${pki.adminKey}`,
          "--kubelet-preferred-address-types=InternalIP",
          "--allow-privileged=true",
          "--profiling=false",
          "--endpoint-reconciler-type=lease",
        ],
      ];
    case "kube-controller-manager":
      return [
        bins.kube,
        [
          "kube-controller-manager",
          `--kubeconfig=${kc}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${ports.controllerManager}`,
          `--service-account-private-key-file=${pki.saKey}`,
          `--root-ca-file=${pki.caCert}`,
          `--cluster-signing-cert-file=${pki.caCert}`,
          `--cluster-signing-key-file=${pki.caKey}`,
          `--service-cluster-ip-range=${net.serviceCIDR}`,
          "--leader-elect=false",
          "--use-service-account-credentials=false",
          "--profiling=false",
        ],
      ];
    case "kube-scheduler":
      return [
        bins.kube,
        [
          "kube-scheduler",
          `--kubeconfig=${kc}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${ports.scheduler}`,
          "--leader-elect=false",
          "--profiling=false",
        ],
      ];
    case "node":
      return [
        bins.node,
        [
          `--kubeconfig=${kc}`,
          `--node-name=${nodeName}`,
          `--state-dir=${paths.node}`,
          `--bridge=${net.bridge}`,
          `--bridge-ip=${net.bridgeIP}`,
          `--pod-cidr=${net.podCIDR}`,
          `--pod-ip-range=${net.podIPFirst}-${net.podIPLast}`,
          `--service-cidr=${net.serviceCIDR}`,
          `--gateway-pool=${net.gatewayPool}`,
          `--client-ca-file=${pki.caCert}`,
          `--kubelet-port=${ports.kubelet}`,
          `--netns-prefix=${net.netnsPrefix}`,
          `--veth-prefix=${net.vethPrefix}`,
          `--apiserver-host=${net.bridgeIP}`,
          `--apiserver-port=${ports.apiserver}`,
          `--images=${imageTables().join(",")}`,
        ],
      ];
  }
}

/**
 * Image → local command tables, later files overriding earlier ones: the built-in table, then
 * every file in $RAUTA_NODE_IMAGES (comma-separated) so other work can map its own images.
 */
function imageTables(): string[] {
  const generated = join(paths.node, "images.generated.json");
  const bins = binaryPaths();
  mkdirSync(paths.node, { recursive: true });
  const builtin = JSON.parse(readFileSync(join(clusterSrc, "images.json"), "utf8")) as unknown;
  const text = JSON.stringify(builtin)
    .replaceAll("${ECHO_BASIC}", bins.echoBasic)
    .replaceAll("${NODE}", bins.node)
    .replaceAll("${REPO}", repoRoot);
  writeFileSync(generated, text);
  const extra = (process.env.RAUTA_NODE_IMAGES ?? "").split(",").filter(Boolean);
  return [generated, ...extra];
}

/**
 * Digest of everything a component is started with (binary, flags, and for the node the image
 * tables' contents). A running cluster is reused only if every component's digest still matches,
 * e.g. not when another checkout or a different RAUTA_NODE_IMAGES started it.
 */
function configKey(c: Component, bins: Binaries, pki: Pki): string {
  const h = createHash("sha256").update(JSON.stringify(daemonArgs(c, bins, pki)));
  if (c === "node") for (const f of imageTables()) h.update(readIfExists(f) ?? `missing:${f}`);
  return h.digest("hex").slice(0, 16);
}

async function componentHealthy(c: Component, pki: Pki, bins: Binaries): Promise<boolean> {
  const rec = readPidRecord(paths.pids, c);
  // A component running an outdated binary or configuration counts as unhealthy, so `up`
  // restarts the cluster on the current build instead of reusing a stale one.
  if (!recordAlive(rec) || rec?.key !== configKey(c, bins, pki)) return false;
  switch (c) {
    case "etcd":
      return etcdHealthy();
    case "kube-apiserver":
      return httpOk(`${apiserverURL}/readyz`, pki);
    case "kube-controller-manager":
      return httpOk(`https://127.0.0.1:${ports.controllerManager}/healthz`, pki);
    case "kube-scheduler":
      return httpOk(`https://127.0.0.1:${ports.scheduler}/healthz`, pki);
    case "node":
      return nodeReady(bins);
  }
}

function nodeReady(bins: Binaries): boolean {
  const r = tryRun(bins.kube, [
    "kubectl",
    "--kubeconfig",
    paths.kubeconfig,
    "get",
    "node",
    nodeName,
    "-o",
    'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
  ]);
  return r.ok && r.out.trim() === "True";
}

export async function status(print = true): Promise<boolean> {
  guardRoutes();
  const pki = pkiPaths();
  const bins = binaryPaths();
  let all = true;
  for (const c of components) {
    const rec = readPidRecord(paths.pids, c);
    const ok = existsSync(pki.caCert) && (await componentHealthy(c, pki, bins).catch(() => false));
    all &&= ok;
    if (print) {
      const alive = rec && recordAlive(rec);
      const stale = alive && !ok && rec.key !== configKey(c, bins, pki);
      const pid = alive
        ? `pid ${rec.pid}${stale ? ", started with other binaries/config: STALE" : ""}`
        : "not running";
      console.log(
        `${c.padEnd(24)} ${ok ? "healthy" : "DOWN"}  (${pid}; log ${join(paths.logs, `${c}.log`)})`,
      );
    }
  }
  if (print) console.log(`kubeconfig ${paths.kubeconfig}${all ? "" : " (cluster not healthy)"}`);
  return all;
}

function ensureRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new ClusterError(
      "hack/cluster must run as root: it creates network namespaces, a bridge, veths and iptables rules",
    );
  }
}

export async function up(): Promise<string> {
  ensureRoot();
  const t0 = Date.now();
  ensureHostTools();
  const bins = ensureBinaries();
  return withLockAsync(`${stateDir}.lock`, 5 * 60_000, () => upLocked(bins, t0));
}

/** $stateDir/bin/kubectl → the all-in-one binary (it dispatches on its link name). */
function linkKubectl(bins: Binaries): void {
  const dir = join(stateDir, "bin");
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, "kubectl"), { force: true });
  symlinkSync(bins.kube, join(dir, "kubectl"));
}

async function upLocked(bins: Binaries, t0: number): Promise<string> {
  linkKubectl(bins);
  if (await status(false)) {
    log("cluster already healthy; reusing it");
    return paths.kubeconfig;
  }
  // Anything half-alive is torn down; a fresh start is faster than diagnosing it.
  await down(true);
  const tStart = Date.now();
  for (const d of [paths.logs, paths.pids]) mkdirSync(d, { recursive: true });
  rmSync(paths.etcdData, { recursive: true, force: true });
  rmSync(paths.node, { recursive: true, force: true });
  bridgeUp();
  const pki = ensurePki();
  writeKubeconfig(pki);

  const start = (c: Component) => {
    const [bin, args] = daemonArgs(c, bins, pki);
    // Logs are truncated per start so "which log" always means this run.
    rmSync(join(paths.logs, `${c}.log`), { force: true });
    const pid = startDaemon(c, bin, args, paths.logs, paths.pids, configKey(c, bins, pki));
    log(`started ${c} (pid ${pid})`);
  };
  start("etcd");
  await waitFor("etcd", "healthy", 20_000, etcdHealthy);
  start("kube-apiserver");
  await waitFor("kube-apiserver", "ready (/readyz)", 45_000, () =>
    httpOk(`${apiserverURL}/readyz`, pki),
  );
  start("kube-controller-manager");
  start("kube-scheduler");
  start("node");
  installCrds(bins);
  await waitFor("kube-controller-manager", "healthy", 30_000, () =>
    httpOk(`https://127.0.0.1:${ports.controllerManager}/healthz`, pki),
  );
  await waitFor("kube-scheduler", "healthy", 30_000, () =>
    httpOk(`https://127.0.0.1:${ports.scheduler}/healthz`, pki),
  );
  await waitFor("node", "Ready", 30_000, async () => nodeReady(bins));
  // Pods cannot be created before the namespace's default ServiceAccount exists.
  await waitFor(
    "kube-controller-manager",
    "creating default ServiceAccount",
    30_000,
    async () =>
      tryRun(bins.kube, [
        "kubectl",
        "--kubeconfig",
        paths.kubeconfig,
        "get",
        "serviceaccount",
        "default",
        "-n",
        "default",
      ]).ok,
  );
  const sec = (ms: number) => (ms / 1000).toFixed(1);
  log(
    `cluster ready: start-to-ready ${sec(Date.now() - tStart)} s (total incl. build/tools check ${sec(Date.now() - t0)} s)`,
  );
  writeFileSync(
    join(stateDir, "last-start.json"),
    JSON.stringify({ startToReadyMs: Date.now() - tStart, at: new Date().toISOString(), versions }),
  );
  return paths.kubeconfig;
}

function installCrds(bins: Binaries): void {
  const dir = join(repoRoot, "crds/gateway-api/standard");
  const fallback = `${process.env.HOME}/go/pkg/mod/sigs.k8s.io/gateway-api@${versions.gatewayApi}/config/crd/standard`;
  const src = existsSync(dir) && readdirSync(dir).some(f => f.endsWith(".yaml")) ? dir : fallback;
  if (!existsSync(src))
    throw new ClusterError(`Gateway API CRDs not found in ${dir} (nor ${fallback})`);
  try {
    const applied = kubectl(bins, [
      "apply",
      "--server-side",
      "--force-conflicts",
      "-o",
      "name",
      "-f",
      src,
    ]);
    const crds = applied.split("\n").filter(l => l.startsWith("customresourcedefinition."));
    kubectl(bins, ["wait", "--for=condition=Established", "--timeout=30s", ...crds]);
  } catch (e) {
    fail("kube-apiserver", `installing Gateway API CRDs from ${src}: ${(e as Error).message}`);
  }
  log(`Gateway API CRDs installed from ${src}`);
}

export async function down(quiet = false): Promise<void> {
  ensureRoot();
  guardRoutes();
  const recs = components.map(c => readPidRecord(paths.pids, c)).filter((r): r is PidRecord => !!r);
  // Node first: on SIGTERM it stops its pods gracefully and removes their namespaces.
  for (const c of [...components].reverse()) {
    const rec = recs.find(r => r.name === c);
    if (rec && recordAlive(rec)) {
      if (!quiet) log(`stopping ${c} (pid ${rec.pid})`);
      await stopPid(rec.pid, c === "node" ? 20_000 : 10_000);
    }
    rmSync(join(paths.pids, `${c}.pid`), { force: true });
  }
  await killStrayPods(quiet);
  bridgeDown();
  if (!quiet) log("cluster stopped");
}

/** Pod processes the node recorded (or that still sit in our namespaces) if the node died first. */
async function killStrayPods(quiet: boolean): Promise<void> {
  const pids = new Set<number>();
  for (const ns of listNetns()) {
    for (const p of tryRun("ip", ["netns", "pids", ns]).out.split("\n"))
      if (/^\d+$/.test(p.trim())) pids.add(Number(p));
  }
  const podsDir = join(paths.node, "pods");
  if (existsSync(podsDir)) {
    for (const uid of readdirSync(podsDir)) {
      for (const f of readdirSync(join(podsDir, uid)).filter(f => f.endsWith(".pid"))) {
        // The node writes "<pid>\nstarttime:<ticks>": the kernel start time tells our process
        // from an unrelated one that reused the PID.
        const [pid, start] = (readIfExists(join(podsDir, uid, f)) ?? "").split("\n");
        if (
          pid &&
          start?.startsWith("starttime:") &&
          procStartTime(Number(pid)) === start.slice(10)
        )
          pids.add(Number(pid));
      }
    }
  }
  for (const pid of pids) {
    if (!quiet) log(`stopping stray pod process ${pid}`);
    await stopPid(pid, 3000);
  }
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  try {
    if (cmd === "up") {
      const kc = await up();
      log(
        `logs: ${paths.logs}/ · kubectl: hack/cluster/bin/kubectl · pods ${net.podCIDR} · services ${net.serviceCIDR} · gateway pool ${net.gatewayPool}`,
      );
      console.log(`export KUBECONFIG=${kc}`);
    } else if (cmd === "down") {
      await down();
    } else if (cmd === "status") {
      process.exitCode = (await status()) ? 0 : 1;
    } else {
      console.error("usage: node hack/cluster/cluster.ts up|down|status");
      process.exitCode = 2;
    }
  } catch (e) {
    console.error(e instanceof ClusterError ? `\nCLUSTER ERROR: ${e.message}` : e);
    process.exitCode = 1;
  }
}

if (import.meta.main) await main();
