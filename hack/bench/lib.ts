// What the benchmarks share: tool installation, process bookkeeping from /proc (RSS, private
// memory, CPU ticks), wrk and h2load runs parsed into numbers, child processes.
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { portOpen } from "../../test/helpers/net.ts";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const DURATION = Number(process.env.BENCH_DURATION ?? 5);
export const CONNECTIONS = 50;

export function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

export function ensureTools() {
  const missing = [
    ["wrk", "wrk"],
    ["h2load", "nghttp2-client"],
    ["nginx", "nginx-light"],
    ["haproxy", "haproxy"],
  ].filter(([cmd]) => !have(cmd!));
  if (!missing.length) return;
  const pkgs = missing.map(([, pkg]) => pkg!);
  console.error(`bench: installing ${pkgs.join(" ")} (Debian packages)`);
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "-qq", ...pkgs], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

export async function waitPort(port: number, timeoutMs = 30_000) {
  await portOpen(port, { timeoutMs });
}

export function anonKb(pid: number): number {
  try {
    const m = /Anonymous:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(
      fs.readFileSync(`/proc/${pid}/status`, "utf8"),
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
export const rssKb = (pid: number) => statusKb(pid, "VmRSS");
/** the highest RSS the process ever had (the kernel's high-water mark) */
export const peakRssKb = (pid: number) => statusKb(pid, "VmHWM");

export const TICKS_PER_SECOND =
  Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** user + system CPU ticks of a process (fields 14 and 15 of /proc/<pid>/stat) */
export function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap(t =>
        fs
          .readFileSync(`/proc/${pid}/task/${t}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number),
      );
  } catch {
    return [];
  }
}

export interface Result {
  rps: number;
  p50: string;
  p99: string;
  p99ms: number;
  rssMb: number;
  /** anonymous (private) memory: RSS without the shared, file-backed pages of the node binary */
  privateMb: number;
  /** CPU time (user + system) the serving processes spent per request: robust to a busy machine */
  cpuUsPerReq: number;
}

export function ms(s: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

function wrkArgs(url: string, headers: string[]): string[] {
  return [
    "-t1",
    `-c${CONNECTIONS}`,
    `-d${DURATION}s`,
    "--latency",
    ...headers.flatMap(h => ["-H", h]),
    url,
  ];
}

function wrkResult(
  url: string,
  out: string,
): Omit<Result, "rssMb" | "privateMb" | "cpuUsPerReq"> & { requests: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? "?";
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? "?";
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errors) console.error(`  wrk ${url}: ${errors[0]}`);
  return { rps, p50, p99, p99ms: ms(p99), requests };
}

export function runWrk(
  url: string,
  headers: string[] = [],
): Omit<Result, "rssMb" | "privateMb" | "cpuUsPerReq"> & { requests: number } {
  return wrkResult(url, execFileSync("wrk", wrkArgs(url, headers), { encoding: "utf8" }));
}

/** runWrk without blocking: for loads that must run side by side. */
export function runWrkAsync(
  url: string,
  headers: string[] = [],
): Promise<Omit<Result, "rssMb" | "privateMb" | "cpuUsPerReq"> & { requests: number }> {
  return new Promise((resolve, reject) =>
    execFile("wrk", wrkArgs(url, headers), { encoding: "utf8" }, (err, out) =>
      err ? reject(err) : resolve(wrkResult(url, out)),
    ),
  );
}

export function runH2load(
  url: string,
  headers: string[] = [],
): Omit<Result, "rssMb" | "privateMb" | "cpuUsPerReq"> & { requests: number } {
  const out = execFileSync(
    "h2load",
    ["-c", "10", "-m", "10", "-D", String(DURATION), ...headers.flatMap(h => ["-H", h]), url],
    { encoding: "utf8" },
  );
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const line = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const failed = /requests: .* (\d+) failed/.exec(out);
  const requests = Number(
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out)?.[1] ?? 0,
  );
  if (failed && failed[1] !== "0") console.error(`  h2load ${url}: ${failed[0]}`);
  return {
    rps,
    p50: line ? `${line[3]} (mean)` : "?",
    p99: line ? `${line[2]} (max)` : "?",
    p99ms: line ? ms(line[2]!) : NaN,
    requests,
  };
}

export function proc(
  cmd: string,
  args: string[],
  name: string,
  env: NodeJS.ProcessEnv = {},
): ChildProcess {
  const p = spawn(cmd, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
    cwd: ROOT,
  });
  let err = "";
  p.stderr!.on("data", d => (err = (err + d).slice(-4000)));
  p.on("exit", code => {
    if (code && code !== 0 && code !== 143) console.error(`${name} exited ${code}: ${err}`);
  });
  return p;
}

export async function kill(p: ChildProcess | null) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise(r => p.once("exit", r));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

/** What `pids` spent (CPU ticks) so far, for measuring a load that is not run by `measured`. */
export function ticksOf(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuTicks(p), 0);
}

// Runs one load and adds what the serving processes spent on it: CPU per request, and their
// RSS (and its private part) right after.
export function measured<R extends { requests: number }>(pids: number[], load: () => R) {
  const before = pids.reduce((s, p) => s + cpuTicks(p), 0);
  const run = load();
  const ticks = pids.reduce((s, p) => s + cpuTicks(p), 0) - before;
  return {
    ...run,
    rssMb: pids.reduce((s, p) => s + rssKb(p), 0) / 1024,
    privateMb: pids.reduce((s, p) => s + anonKb(p), 0) / 1024,
    cpuUsPerReq:
      pids.length && run.requests ? (ticks / TICKS_PER_SECOND / run.requests) * 1e6 : NaN,
  };
}

/**
 * Puts `section` (its `<!-- name:start -->` … `<!-- name:end -->` markers included) into
 * docs/benchmarks.md in place of the previous one, or appends it; returns the file's path.
 */
export function writeBenchmarkSection(name: string, section: string): string {
  const file = path.join(ROOT, "docs/benchmarks.md");
  const doc = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "# Benchmarks\n";
  const re = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`);
  fs.writeFileSync(
    file,
    re.test(doc) ? doc.replace(re, () => section) : `${doc.trimEnd()}\n\n${section}\n`,
  );
  return file;
}
