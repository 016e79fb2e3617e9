// The one place where the dev cluster's pinned versions, paths and addresses live. Everything
// in hack/cluster/ and test/integration/helpers/ reads them from here.
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const versions = {
  /** k8s.io/kubernetes; its staging modules are replaced by v0.<minor>.<patch> (hack/cluster/go/go.mod). */
  kubernetes: "v1.37.2",
  /** go.etcd.io/etcd/server/v3 as selected by kubernetes v1.37.2's go.mod (MVS; it requires v3.7.0). */
  etcd: "v3.7.0",
  /** sigs.k8s.io/gateway-api(/conformance): CRDs and the echo-basic backend. */
  gatewayApi: "v1.6.3",
  /** The Pepr controller image `npx pepr build/deploy` references. */
  peprController: "v1.1.4",
} as const;

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const clusterSrc = join(repoRoot, "hack/cluster");

/** Built binaries, keyed by version (and source hash for our own Go code); survives checkouts. */
export const cacheRoot = process.env.RAUTA_CACHE_DIR ?? join(homedir(), ".cache/rauta");

/** Runtime state of the one dev cluster this machine runs: PKI, etcd data, logs, pids, kubeconfig. */
export const stateDir = process.env.RAUTA_CLUSTER_DIR ?? join(cacheRoot, "cluster");
export const paths = {
  pki: join(stateDir, "pki"),
  etcdData: join(stateDir, "etcd"),
  logs: join(stateDir, "logs"),
  pids: join(stateDir, "pids"),
  node: join(stateDir, "node"),
  kubeconfig: join(stateDir, "kubeconfig"),
};

/**
 * Networking. Pods live on a private bridge; nothing is routed anywhere else (pods get no default
 * route, and the service range is blackholed on the host unless a DNAT rule claims the address).
 */
export const net = {
  bridge: "rauta0",
  /** Host side of the bridge; the API server binds here so pods and the host both reach it. */
  bridgeIP: "10.244.0.1",
  podCIDR: "10.244.0.0/24",
  /** Pod IPs are handed out from .2 up to .191. */
  podIPFirst: 2,
  podIPLast: 191,
  /** Reserved for Gateway addresses (assigned by the RAUTA control plane): 10.244.0.192-.254. */
  gatewayPool: "10.244.0.192/26",
  serviceCIDR: "10.96.0.0/16",
  /** The `kubernetes` Service's ClusterIP (first address of serviceCIDR). */
  apiServiceIP: "10.96.0.1",
  netnsPrefix: "rauta-",
  vethPrefix: "rvth",
};

export const ports = {
  etcdClient: 23790,
  etcdPeer: 23800,
  apiserver: 6443,
  controllerManager: 10257,
  scheduler: 10259,
  /** The process node's kubelet API (container logs only), on the bridge address. */
  kubelet: 10250,
};

export const nodeName = "rauta-node";
export const apiserverURL = `https://${net.bridgeIP}:${ports.apiserver}`;
