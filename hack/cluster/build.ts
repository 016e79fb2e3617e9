// Builds (or finds cached) binaries for the dev cluster and installs the host tools it needs.
// Cache layout: ~/.cache/rauta/<component>-<version>/<binary>. Our own Go code is part of the
// key (a short hash of its sources), so editing it rebuilds and nothing stale is ever reused.
// Usage: node hack/cluster/build.ts   (prints the binary paths)
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join, relative } from "node:path";
import { cacheRoot, clusterSrc, versions } from "./config.ts";
import { log, withLock } from "./util.ts";

export interface Binaries {
  /** All-in-one: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl. */
  kube: string;
  /** The process node agent. */
  node: string;
  /** sigs.k8s.io/gateway-api/conformance/echo-basic. */
  echoBasic: string;
}

const goModDir = join(clusterSrc, "go");
const imagesModDir = join(clusterSrc, "go-images");

export function hashFiles(root: string, filter: (rel: string) => boolean): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (statSync(p).isDirectory()) walk(p);
      else if (filter(rel)) h.update(rel).update("\0").update(readFileSync(p)).update("\0");
    }
  };
  walk(root);
  return h.digest("hex").slice(0, 10);
}

/** Stamp the version the upstream release would report (/version, kubectl version). */
function kubeLdflags(): string {
  const v = versions.kubernetes;
  const [major, minor] = v.slice(1).split(".");
  const x = (pkg: string) => [
    `-X ${pkg}.gitVersion=${v}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ];
  return [...x("k8s.io/component-base/version"), ...x("k8s.io/client-go/pkg/version")].join(" ");
}

export function goBuild(
  modDir: string,
  pkg: string,
  out: string,
  what: string,
  ldflags = "",
): void {
  const tmp = `${out}.tmp-${process.pid}`;
  log(`building ${what} (${pkg}) → ${out}; a cold build takes minutes`);
  const t0 = Date.now();
  const r = spawnSync(
    goBin(),
    ["build", "-trimpath", `-ldflags=-s -w ${ldflags}`, "-o", tmp, pkg],
    {
      cwd: modDir,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, GOFLAGS: "-mod=readonly -buildvcs=false", CGO_ENABLED: "0" },
    },
  );
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`go build of ${what} failed (exit ${r.status}); see output above`);
  }
  renameSync(tmp, out);
  log(`built ${what} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * A tool the tests run, built from a small Go module of ours under hack/ (its go.mod, go.sum and
 * top-level .go files), once per source hash, into ~/.cache/rauta/<name>-<hash>/<binary>.
 */
export function moduleBinary(modDir: string, name: string, binary: string, what: string): string {
  const key = hashFiles(modDir, rel => /^(go\.mod|go\.sum|[^/]+\.go)$/.test(rel));
  const dir = join(cacheRoot, `${name}-${key}`);
  const bin = join(dir, binary);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    goBuild(modDir, ".", bin, what);
  }
  return bin;
}

/** `go` from PATH, else the standard install location (CI shells may not have it on PATH). */
export function goBin(): string {
  if (spawnSync("go", ["version"]).status === 0) return "go";
  if (existsSync("/usr/local/go/bin/go")) return "/usr/local/go/bin/go";
  throw new Error(
    "Go toolchain not found (need go >= 1.26 on PATH or in /usr/local/go; see docs/dev-cluster.md)",
  );
}

function ensureGo(): void {
  const r = spawnSync(goBin(), ["version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`go version failed: ${r.stderr}`);
  log(r.stdout.trim());
}

const CLUSTER_TOOLS: Record<string, string> = {
  ip: "iproute2",
  openssl: "openssl",
  unshare: "util-linux",
  iptables: "iptables",
};

/**
 * Host packages the harness shells out to (command → Debian package; default: the cluster's);
 * installed with apt-get only when missing.
 */
export function ensureHostTools(need: Record<string, string> = CLUSTER_TOOLS): void {
  const missing = Object.entries(need).filter(
    ([bin]) => spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0,
  );
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, p]) => p))];
  log(`installing host packages: ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], {
    stdio: "inherit",
    env,
  });
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit", env });
    r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], {
      stdio: "inherit",
      env,
    });
  }
  if (r.status !== 0) throw new Error(`apt-get install ${pkgs.join(" ")} failed`);
}

export function binaryPaths(): Binaries {
  const goSrc = (rel: string) => rel === "go.mod" || rel === "go.sum";
  const kubeKey = hashFiles(goModDir, rel => goSrc(rel) || rel.startsWith("cmd/kube/"));
  const nodeKey = hashFiles(goModDir, rel => goSrc(rel) || rel.startsWith("cmd/node/"));
  const echoKey = hashFiles(imagesModDir, goSrc);
  return {
    kube: join(cacheRoot, `kube-${versions.kubernetes}-${kubeKey}`, "kube"),
    node: join(cacheRoot, `node-${versions.kubernetes}-${nodeKey}`, "node"),
    echoBasic: join(cacheRoot, `echo-basic-${versions.gatewayApi}-${echoKey}`, "echo-basic"),
  };
}

export function ensureBinaries(): Binaries {
  const b = binaryPaths();
  if (existsSync(b.kube) && existsSync(b.node) && existsSync(b.echoBasic)) return b;
  ensureGo();
  mkdirSync(cacheRoot, { recursive: true });
  // One build at a time on this machine (2 cores; concurrent `cluster:up`s must not race).
  withLock(join(cacheRoot, ".build.lock"), 30 * 60_000, () => {
    const jobs: [string, string, string, string, string][] = [
      [
        b.kube,
        goModDir,
        "./cmd/kube",
        `kube ${versions.kubernetes} (apiserver, controller-manager, scheduler, etcd, kubectl)`,
        kubeLdflags(),
      ],
      [b.node, goModDir, "./cmd/node", "process node", ""],
      [
        b.echoBasic,
        imagesModDir,
        "sigs.k8s.io/gateway-api/conformance/echo-basic",
        `echo-basic ${versions.gatewayApi}`,
        "",
      ],
    ];
    for (const [out, dir, pkg, what, ldflags] of jobs) {
      if (existsSync(out)) continue;
      mkdirSync(join(out, ".."), { recursive: true });
      goBuild(dir, pkg, out, what, ldflags);
    }
  });
  return b;
}

if (import.meta.main) {
  ensureHostTools();
  const t0 = Date.now();
  const b = ensureBinaries();
  log(`binaries ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(b, null, 2));
}
