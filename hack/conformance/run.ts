// `npm run conformance`: the official Gateway API conformance suite (v1.6.3) against RAUTA,
// deployed the way a user deploys it, on the local cluster of hack/cluster:
//   1. `npm run deploy:local` (the cluster comes up if it is not),
//   2. the suite as a test binary of our own (hack/conformance: `go test -c`, cached by version
//      and source hash under ~/.cache/rauta like the other Go components),
//   3. the suite run with the features RAUTA claims in GatewayClass rauta's
//      status.supportedFeatures (the suite reads them itself when none are passed), writing its
//      report (default: docs/conformance/<channel>-v<package version>-default-report.yaml).
// Flags: --channel standard|experimental (the Gateway API CRDs installed first; default
// standard), --no-deploy (reuse what the last run deployed, for a quick local loop), --report <path>, --run-test <TestName> (one test), --profiles <list> (default: GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS, the profiles RAUTA implements),
// --suite:<flag>[=value] passes --<flag> to the suite (e.g. --suite:all-features).
// The suite's own log goes to ~/.cache/rauta/cluster/logs/conformance.log; PASS/FAIL lines and
// a summary are printed. Exit 1 when the suite failed.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { deployLocal, LOCAL_GATEWAY_ADDRESSES } from "../deploy/local.ts";
import type { GatewayApiChannel } from "../deploy/local.ts";
import { clusterHandle } from "../../test/integration/helpers/cluster.ts";
import { goBin } from "../cluster/build.ts";
import { cacheRoot, paths, repoRoot, versions } from "../cluster/config.ts";
import { log, withLock } from "../cluster/util.ts";

const moduleDir = join(repoRoot, "hack/conformance");
const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
/** upstream's naming (conformance/reports/README.md): <channel>-<implementation version>-<mode> */
export function reportName(channel: GatewayApiChannel = "standard"): string {
  return `${channel}-v${pkg.version}-default-report.yaml`;
}
export function defaultReport(channel: GatewayApiChannel = "standard"): string {
  return join(repoRoot, "docs/conformance", reportName(channel));
}

/** The suite's test binary: built once per suite version and source of hack/conformance. */
export function conformanceBinary(): string {
  const h = createHash("sha256");
  for (const f of readdirSync(moduleDir)
    .filter(f => /\.(go|mod|sum)$/.test(f))
    .sort())
    h.update(f)
      .update("\0")
      .update(readFileSync(join(moduleDir, f)))
      .update("\0");
  const out = join(
    cacheRoot,
    `conformance-${versions.gatewayApi}-${h.digest("hex").slice(0, 10)}`,
    "conformance.test",
  );
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  withLock(join(cacheRoot, ".build.lock"), 30 * 60_000, () => {
    if (existsSync(out)) return;
    log(
      `building the conformance suite ${versions.gatewayApi} → ${out}; a cold build takes minutes`,
    );
    const t0 = Date.now();
    const tmp = `${out}.tmp-${process.pid}`;
    const r = spawnSync(goBin(), ["test", "-c", "-trimpath", "-o", tmp, "."], {
      cwd: moduleDir,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, GOFLAGS: "-mod=readonly -buildvcs=false", CGO_ENABLED: "0" },
    });
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`go test -c in hack/conformance failed (exit ${r.status}); see output above`);
    }
    renameSync(tmp, out);
    log(`built the conformance suite in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });
  return out;
}

export interface ProfileResult {
  name: string;
  core: { result: string; statistics: { Passed: number; Failed: number; Skipped: number } };
  extended?: {
    result: string;
    statistics: { Passed: number; Failed: number; Skipped: number };
    supportedFeatures?: string[];
    unsupportedFeatures?: string[];
    failedTests?: string[];
  };
  summary?: string;
}
export interface Report {
  gatewayAPIVersion: string;
  gatewayAPIChannel: string;
  implementation: { project: string; version: string };
  mode: string;
  profiles: ProfileResult[] | null;
  succeededProvisionalTests?: string[];
}

export interface RunOptions {
  report?: string;
  /** the Gateway API CRDs to install first (default standard); names the default report */
  channel?: GatewayApiChannel;
  /** false: run against what a previous run deployed, skipping deploy:local (about a minute) */
  deploy?: boolean;
  runTest?: string;
  profiles?: string[];
  /** more suite flags, e.g. --all-features to see what else passes */
  extraArgs?: string[];
  /** lines of the suite's output as they come (default: PASS/FAIL lines to stderr) */
  onLine?: (line: string) => void;
}

export interface RunResult {
  exitCode: number;
  report: Report | null;
  reportPath: string;
  logPath: string;
  failedTests: string[];
}

/** The suite's profiles RAUTA implements, in the order reports list them. */
export const PROFILES = ["GATEWAY-HTTP", "GATEWAY-GRPC", "GATEWAY-TLS"] as const;

/** Deploys RAUTA on the local cluster and runs the suite; never throws for a failing suite. */
export async function runConformance(opts: RunOptions = {}): Promise<RunResult> {
  const binary = conformanceBinary();
  const cluster =
    opts.deploy === false
      ? clusterHandle()
      : await deployLocal({ channel: opts.channel ?? "standard" });
  const reportPath = opts.report ?? defaultReport(opts.channel);
  mkdirSync(dirname(reportPath), { recursive: true });
  rmSync(reportPath, { force: true });
  const args = [
    "-test.run=^TestConformance$",
    "-test.v",
    "-test.timeout=50m",
    "--gateway-class=rauta",
    `--conformance-profiles=${(opts.profiles ?? PROFILES).join(",")}`,
    "--organization=rauta",
    "--project=rauta",
    "--url=https://rauta.dev",
    `--version=v${pkg.version}`,
    "--contact=https://rauta.dev/issues",
    `--report-output=${reportPath}`,
    // GatewayStaticAddresses: one address of the local pool, and one no Gateway can ever get
    `--usable-address=${LOCAL_GATEWAY_ADDRESSES.at(-1)}`,
    "--unusable-address=10.245.255.254",
  ];
  if (opts.runTest) args.push(`--run-test=${opts.runTest}`);
  args.push(...(opts.extraArgs ?? []));
  const logPath = join(paths.logs, "conformance.log");
  mkdirSync(paths.logs, { recursive: true });
  const out = createWriteStream(logPath);
  const failedTests: string[] = [];
  const onLine =
    opts.onLine ??
    ((line: string) => {
      if (/^\s*--- (PASS|FAIL|SKIP)/.test(line) || /^(ok|FAIL)\s/.test(line))
        process.stderr.write(`${line}\n`);
    });
  log(`conformance: ${binary} ${args.join(" ")} (log: ${logPath})`);
  const t0 = Date.now();
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: moduleDir,
      env: { ...process.env, KUBECONFIG: cluster.kubeconfig },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    const feed = (chunk: Buffer) => {
      out.write(chunk);
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^\s*--- FAIL: TestConformance\/(\S+)/.exec(line);
        if (m) failedTests.push(m[1]!);
        onLine(line);
      }
    };
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    child.on("error", reject);
    child.on("close", code => resolve(code ?? 1));
  });
  out.end();
  log(`conformance: suite exited ${exitCode} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const report = existsSync(reportPath)
    ? (parse(readFileSync(reportPath, "utf8")) as Report)
    : null;
  return { exitCode, report, reportPath, logPath, failedTests };
}

/** One line per profile: core and extended counts, and what failed. */
export function summarize(r: RunResult): string {
  if (r.report === null)
    return `no report was written (suite exit ${r.exitCode}; see ${r.logPath})`;
  // the suite writes `profiles: null` when it stopped before any test ran
  return (r.report.profiles ?? [])
    .map(p => {
      const c = p.core.statistics;
      const e = p.extended;
      const ext = e
        ? `; extended ${e.result}: ${e.statistics.Passed} passed, ${e.statistics.Failed} failed, ${e.statistics.Skipped} skipped, ${e.supportedFeatures?.length ?? 0} features supported, ${e.unsupportedFeatures?.length ?? 0} unsupported`
        : "";
      return `${p.name}: core ${p.core.result}: ${c.Passed} passed, ${c.Failed} failed, ${c.Skipped} skipped${ext}`;
    })
    .concat(r.failedTests.length ? [`failed: ${r.failedTests.join(", ")}`] : [])
    .join("\n");
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  try {
    const r = await runConformance({
      report: flag("--report"),
      channel: flag("--channel") === "experimental" ? "experimental" : "standard",
      deploy: !argv.includes("--no-deploy"),
      runTest: flag("--run-test"),
      profiles: flag("--profiles")?.split(","),
      extraArgs: argv.filter(a => a.startsWith("--suite:")).map(a => `--${a.slice(8)}`),
    });
    console.log(summarize(r));
    console.log(`report: ${r.reportPath}`);
    process.exitCode = r.exitCode === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write(
      `conformance failed to run: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 2;
  }
}
