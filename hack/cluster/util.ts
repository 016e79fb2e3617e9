// Small process/file helpers shared by the cluster scripts (no dependencies beyond node:*).
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

export function log(msg: string): void {
  process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs a command, returns stdout; throws with stderr on failure. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    input: opts.input,
    env: opts.env ?? process.env,
  });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`,
    );
  return r.stdout;
}

/** Like run() but never throws; for idempotent teardown steps. */
export function tryRun(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { ok: r.status === 0, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** A cross-process mutex: mkdir is atomic. Stale locks (holder PID gone) are broken. */
export function withLock<T>(lockDir: string, timeoutMs: number, fn: () => T): T {
  acquire(lockDir, timeoutMs);
  try {
    return fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

export async function withLockAsync<T>(
  lockDir: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  acquire(lockDir, timeoutMs);
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function acquire(lockDir: string, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const holder = Number(readIfExists(join(lockDir, "pid")));
      const age = Date.now() - (existsSync(lockDir) ? statSync(lockDir).mtimeMs : 0);
      if ((holder && !pidAlive(holder)) || (!holder && age > 10_000)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for lock ${lockDir} (held by pid ${holder})`);
      sleepSync(500);
    }
  }
}

export function readIfExists(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); treat it as gone.
    const stat = readIfExists(`/proc/${pid}/stat`);
    return !stat || !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined. */
export function procStartTime(pid: number): string | undefined {
  const stat = readIfExists(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/** The executable path of a live PID, so we only ever signal processes we started. */
export function pidExe(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    return undefined;
  }
}

/** Starts a long-running daemon detached from us, output appended to its log file. */
export function startDaemon(
  name: string,
  bin: string,
  args: string[],
  logsDir: string,
  pidsDir: string,
  key = "",
  env?: NodeJS.ProcessEnv,
): number {
  mkdirSync(logsDir, { recursive: true });
  mkdirSync(pidsDir, { recursive: true });
  const logFile = join(logsDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(bin, args, {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: env ?? process.env,
  });
  closeSync(fd);
  if (!child.pid) throw new Error(`failed to start ${name} (${bin})`);
  child.unref();
  writeFileSync(join(pidsDir, `${name}.pid`), `${child.pid}\n${bin}\n${key}\n`);
  return child.pid;
}

export interface PidRecord {
  name: string;
  pid: number;
  bin: string;
  /** What the process was started with (a digest of its configuration), to detect drift. */
  key: string;
}

export function readPidRecord(pidsDir: string, name: string): PidRecord | undefined {
  const txt = readIfExists(join(pidsDir, `${name}.pid`));
  if (!txt) return undefined;
  const [pid, bin, key] = txt.split("\n");
  return { name, pid: Number(pid), bin: bin ?? "", key: key ?? "" };
}

/** True if the recorded PID is alive and still runs the binary we started. */
export function recordAlive(r: PidRecord | undefined): boolean {
  return !!r && pidAlive(r.pid) && pidExe(r.pid) === r.bin;
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Only for PIDs verified to be ours. */
export async function stopPid(pid: number, graceMs: number): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* already gone */
  }
  for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
}

export function tail(file: string, lines = 30): string {
  const txt = readIfExists(file);
  if (!txt) return `(no log at ${file})`;
  return txt
    .split("\n")
    .slice(-lines - 1)
    .join("\n");
}
