// Test-side access to the local dev cluster (hack/cluster). Integration suites call
// ensureCluster() in a before() hook: it builds/starts the cluster if needed (reusing a healthy
// one) and returns a handle with a kubectl runner bound to its kubeconfig.
import { spawnSync } from "node:child_process";
import { binaryPaths } from "../../../hack/cluster/build.ts";
import { down, up } from "../../../hack/cluster/cluster.ts";
import { net, paths, repoRoot } from "../../../hack/cluster/config.ts";

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  kubeconfig: string;
  /** Runs kubectl; throws (with stderr) unless it exits 0. */
  kubectl(args: string[], input?: string): string;
  /** Runs kubectl and returns the exit code and output, for expected failures. */
  kubectlResult(args: string[], input?: string): KubectlResult;
  /** `kubectl get -o json` parsed. */
  getJson<T = unknown>(args: string[]): T;
  /** kubectl apply -f - of a YAML/JSON document string. */
  apply(manifest: string, namespace?: string): string;
}

export { net, paths, repoRoot };

export async function ensureCluster(): Promise<Cluster> {
  const kubeconfig = await up();
  return clusterHandle(kubeconfig);
}

export async function stopCluster(): Promise<void> {
  await down();
}

export function clusterHandle(kubeconfig = paths.kubeconfig): Cluster {
  const bin = binaryPaths().kube;
  const kubectlResult = (args: string[], input?: string): KubectlResult => {
    const r = spawnSync(bin, ["kubectl", "--kubeconfig", kubeconfig, ...args], {
      encoding: "utf8",
      input,
      timeout: 120_000,
      // `get -o json` of a thousand objects is several MiB (the default limit is 1 MiB).
      maxBuffer: 256 * 1024 * 1024,
    });
    return {
      code: r.status ?? -1,
      stdout: r.stdout ?? "",
      stderr: (r.stderr ?? "") + (r.error ? String(r.error) : ""),
    };
  };
  const kubectl = (args: string[], input?: string): string => {
    const r = kubectlResult(args, input);
    if (r.code !== 0)
      throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  return {
    kubeconfig,
    kubectl,
    kubectlResult,
    getJson: args => JSON.parse(kubectl(["get", ...args, "-o", "json"])),
    apply: (manifest, namespace) =>
      kubectl(["apply", ...(namespace ? ["-n", namespace] : []), "-f", "-"], manifest),
  };
}

/** Polls fn until it returns a non-undefined value (or throws the last error) within timeoutMs. */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  fn: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    }
    await new Promise(r => setTimeout(r, 250));
  }
}

/** A fresh namespace name for a suite (DNS-1123, unique per run). */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}
