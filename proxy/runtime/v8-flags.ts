// V8 heap settings for a serving process. A proxy keeps a small, long-lived heap (config,
// routers, pools: ~30 MB at 1,000 routes) and allocates ~12 KB of garbage per request at tens of
// thousands of requests per second; V8's defaults (sized for a 24 GiB machine) let that grow the
// heap to 3-7× its live size. Measured with `npm run bench` at 1,000 routes (docs/benchmarks.md):
// V8's defaults peak at 235 MB RSS per worker, these at 128-139 MB, at equal throughput.
//   --max-semi-space-size=8   young generation large enough that in-flight requests die young:
//                             at 2 MiB, 50 concurrent requests overflowed it and ~2 KB of every
//                             request was promoted (450 MB in 9 s), at 8 MiB ~50 bytes.
//   --heap-growing-percent=30 collect old space at 1.3× its live size instead of up to 4× (what
//                             still gets promoted, h2 streams above all, is collected early).
//   --no-memory-pool          give freed pages back to the OS at once instead of keeping them.
// RAUTA_V8_FLAGS replaces the whole set (space-separated; empty = V8's defaults).
export const DEFAULT_PROXY_V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=8",
  "--heap-growing-percent=30",
  "--no-memory-pool",
];

export function proxyV8Flags(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env.RAUTA_V8_FLAGS;
  if (override === undefined) return [...DEFAULT_PROXY_V8_FLAGS];
  return override.split(/\s+/).filter(Boolean);
}

/** The proxy's heap settings plus --expose-gc, which compactHeap() needs. */
export function servingV8Flags(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...proxyV8Flags(env), "--expose-gc"];
}

/** The flag's name: "--max-semi-space-size" for "--max-semi-space-size=8", "--memory-pool" for "--no-memory-pool". */
function flagName(flag: string): string {
  const name = flag.split("=")[0]!.replace(/_/g, "-");
  return name.startsWith("--no-") ? `--${name.slice(5)}` : name;
}

/**
 * execArgv for a process that serves: `inherited` without any flag that `flags` sets (so the
 * proxy's settings win over the parent's, and nothing is repeated), then `flags`.
 */
export function withV8Flags(inherited: readonly string[], flags: readonly string[]): string[] {
  const names = new Set(flags.map(flagName));
  return [...inherited.filter(a => !names.has(flagName(a))), ...flags];
}

/** Whether a process started with `execArgv` already runs with every flag in `flags`. */
export function hasV8Flags(execArgv: readonly string[], flags: readonly string[]): boolean {
  return flags.every(f => execArgv.includes(f));
}

/**
 * Collects and compacts the heap if the process runs with --expose-gc (serving processes do).
 * Called once after each applied config: receiving, validating and preparing one leaves
 * megabytes of garbage (≈ 1 MB of JSON per 1,000 routes, parsed, validated, copied), and the
 * new generation's long-lived objects sit scattered among it. A plain major GC frees the garbage
 * but leaves those pages partly filled (~25 MB of RSS in one start in three at 1,000 routes);
 * "last-resort" compacts them as well.
 */
export function compactHeap(): void {
  (globalThis as { gc?: (options?: object) => void }).gc?.({
    type: "major",
    execution: "sync",
    flavor: "last-resort",
  });
}
