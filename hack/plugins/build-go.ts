// Builds the Go SDK's plugins (plugins-sdk/go) into plugins-sdk/go/dist/<name>.wasm, and runs the
// SDK's native tests (its codec against plugins-sdk/testdata/vectors.json).
//
//   node hack/plugins/build-go.ts           build what changed (a source-hash stamp per module)
//   node hack/plugins/build-go.ts --force   rebuild everything
//   node hack/plugins/build-go.ts --test    also run `go test ./...` of the SDK
//
// Each module is `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`: a WASI reactor whose
// `//go:wasmexport` functions run on the Go runtime that `_initialize` starts (Extism calls it).
// -trimpath and -buildvcs=false keep the bytes, hence the plugin digest, independent of the
// checkout's path and commit.
import { execFile } from "node:child_process";
import { mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { readStamp, size, sourcesHash } from "./stamps.ts";

export const GO_SDK_DIR = resolve(import.meta.dirname, "../../plugins-sdk/go");
export const GO_DIST_DIR = join(GO_SDK_DIR, "dist");
/** wasmexport, which the SDK needs, arrived in Go 1.24 */
const MIN_GO = [1, 24] as const;

/** The modules built, by name: their main package, relative to the SDK. */
export const GO_PLUGINS: ReadonlyArray<{ name: string; dir: string }> = [
  { name: "template", dir: "template" },
  { name: "noop", dir: "examples/noop" },
  { name: "hostcheck", dir: "examples/hostcheck" },
];

const BUILD_FLAGS = ["-buildmode=c-shared", "-trimpath", "-buildvcs=false"];

export interface GoPluginBuild {
  name: string;
  /** absolute path of the .wasm */
  path: string;
  /** false when the stamp said it was up to date */
  built: boolean;
  /** build time (0 when skipped) */
  ms: number;
  bytes: number;
}

export interface GoTestRun {
  ok: boolean;
  /** go test's combined output */
  output: string;
  ms: number;
}

interface RunResult {
  code: number;
  output: string;
}

/** Runs go in the SDK's directory; never rejects except when go cannot be started. */
function go(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile("go", args, { cwd: GO_SDK_DIR, env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err === null) return resolvePromise({ code: 0, output });
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return reject(
          new Error(
            `the Go SDK needs the go command (Go ${MIN_GO.join(".")} or later) on PATH: https://go.dev/dl/`,
          ),
        );
      resolvePromise({ code: typeof err.code === "number" ? err.code : 1, output });
    });
  });
}

/** The environment of every go command: the module stands alone (no go.work). */
function goEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GOWORK: "off", ...extra };
  if (extra.GOOS === undefined) delete env.GOOS;
  if (extra.GOARCH === undefined) delete env.GOARCH;
  return env;
}

let goVersionCache: Promise<string> | null = null;

/** `go version`'s output, checked against MIN_GO; a clear error when go is missing or old. */
export function goVersion(): Promise<string> {
  goVersionCache ??= (async () => {
    const { code, output } = await go(["version"], goEnv());
    const m = /go(\d+)\.(\d+)/.exec(output);
    if (code !== 0 || m === null) throw new Error(`go version failed: ${output.trim()}`);
    const [major, minor] = [Number(m[1]), Number(m[2])];
    if (major < MIN_GO[0] || (major === MIN_GO[0] && minor < MIN_GO[1]))
      throw new Error(
        `the Go SDK needs Go ${MIN_GO.join(".")} or later (//go:wasmexport); found ${output.trim()}`,
      );
    return output.trim();
  })();
  goVersionCache.catch(() => (goVersionCache = null));
  return goVersionCache;
}

/** The files a module's bytes depend on: the module's non-test Go files, go.mod and go.sum. */
async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== GO_DIST_DIR && !entry.name.startsWith(".") && entry.name !== "testdata")
        out.push(...(await sourceFiles(path)));
    } else if (
      (entry.name.endsWith(".go") && !entry.name.endsWith("_test.go")) ||
      entry.name === "go.mod" ||
      entry.name === "go.sum"
    ) {
      out.push(path);
    }
  }
  return out.sort();
}

/**
 * One hash over every source file of the SDK module, the go version and the flags: a change to
 * the SDK rebuilds every plugin, which is what importing it means.
 */
async function sourceHash(version: string): Promise<string> {
  return sourcesHash(
    `${version}\n${BUILD_FLAGS.join(" ")}`,
    GO_SDK_DIR,
    await sourceFiles(GO_SDK_DIR),
  );
}

/** Builds every module of GO_PLUGINS whose stamp is stale, one after the other. */
export async function buildGoPlugins(opts: { force?: boolean } = {}): Promise<GoPluginBuild[]> {
  const version = await goVersion();
  const hash = await sourceHash(version);
  await mkdir(GO_DIST_DIR, { recursive: true });
  const env = goEnv({ GOOS: "wasip1", GOARCH: "wasm" });
  const results: GoPluginBuild[] = [];
  for (const { name, dir } of GO_PLUGINS) {
    const path = join(GO_DIST_DIR, `${name}.wasm`);
    const stampPath = `${path}.stamp`;
    const existing = await size(path);
    if (!opts.force && existing !== null && (await readStamp(stampPath)) === hash) {
      results.push({ name, path, built: false, ms: 0, bytes: existing });
      continue;
    }
    // write aside, then rename: a reader never sees half a module
    const tmp = `${path}.${process.pid}.tmp`;
    const t0 = performance.now();
    const { code, output } = await go(["build", ...BUILD_FLAGS, "-o", tmp, `./${dir}`], env);
    if (code !== 0)
      throw new Error(`go build of ${name} (plugins-sdk/go/${dir}) failed:\n${output.trim()}`);
    await rename(tmp, path);
    await writeFile(stampPath, `${hash}\n`);
    results.push({
      name,
      path,
      built: true,
      ms: performance.now() - t0,
      bytes: (await size(path))!,
    });
  }
  return results;
}

/** `go test ./...` of the SDK, natively: the codec against the shared vectors, the template's logic. */
export async function testGoSdk(): Promise<GoTestRun> {
  await goVersion();
  const t0 = performance.now();
  const { code, output } = await go(["test", "./..."], goEnv());
  return { ok: code === 0, output: output.trim(), ms: performance.now() - t0 };
}

if (import.meta.main) {
  const args = new Set(process.argv.slice(2));
  try {
    if (args.has("--test")) {
      const run = await testGoSdk();
      console.log(run.output);
      if (!run.ok) throw new Error("go test ./... of plugins-sdk/go failed");
    }
    for (const b of await buildGoPlugins({ force: args.has("--force") })) {
      const what = b.built ? `built in ${(b.ms / 1000).toFixed(1)} s` : "up to date";
      console.log(`${relative(process.cwd(), b.path)}: ${(b.bytes / 1e6).toFixed(2)} MB, ${what}`);
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
