// Builds the Rust SDK's plugins (plugins-sdk/rust) into plugins-sdk/rust/dist/<name>.wasm, and
// runs the SDK's native tests (its codec against plugins-sdk/testdata/vectors.json).
//
//   node hack/plugins/build-rust.ts           build what changed (a source-hash stamp per module)
//   node hack/plugins/build-rust.ts --force   rebuild everything
//   node hack/plugins/build-rust.ts --test    also run the SDK's native tests (rustc --test)
//   node hack/plugins/build-rust.ts --check   only say which compiler would be used, or why none
//
// No cargo and no crates: the SDK has no dependencies, so plain rustc builds it as an rlib for
// wasm32-unknown-unknown and each plugin as a cdylib against it (-C lto, panic=abort, symbols
// stripped, paths remapped so the bytes, hence the digest, do not depend on the checkout's path).
// The compiler must have the wasm32-unknown-unknown standard library and a wasm linker:
// rustup's toolchains without `rustup target add wasm32-unknown-unknown` do not. On Debian and
// Ubuntu the distribution's rustc with libstd-rust-dev-wasm32 (and the lld its rust-lld points
// at) is a matched set: ensureRustToolchain() installs it when CI=true or
// RAUTA_INSTALL_TOOLCHAINS=1; set RAUTA_RUSTC to choose a compiler.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { delimiter, join, relative, resolve } from "node:path";
import os from "node:os";
import { readStamp, size, sourcesHash } from "./stamps.ts";

export const RUST_SDK_DIR = resolve(import.meta.dirname, "../../plugins-sdk/rust");
export const RUST_DIST_DIR = join(RUST_SDK_DIR, "dist");
const VECTORS = resolve(import.meta.dirname, "../../plugins-sdk/testdata/vectors.json");
/** where the rlib and the native test binaries go */
const WORK_DIR = join(RUST_DIST_DIR, ".build");
const TARGET = "wasm32-unknown-unknown";
/** the oldest rustc the SDK is written for (Debian 12's) */
export const MIN_RUSTC = [1, 63] as const;

/** The modules built, by name: their crate root, relative to the SDK. */
export const RUST_PLUGINS: ReadonlyArray<{ name: string; src: string }> = [
  { name: "template", src: "template/src/lib.rs" },
  { name: "noop", src: "examples/noop/src/lib.rs" },
  { name: "hostcheck", src: "examples/hostcheck/src/lib.rs" },
];

const COMMON_FLAGS = [
  "--edition",
  "2021",
  "-C",
  "opt-level=s",
  "-C",
  "panic=abort",
  "-C",
  "debuginfo=0",
];
const STD_FEATURE = ["--cfg", 'feature="std"'];
const PLUGIN_FLAGS = ["-C", "lto", "-C", "codegen-units=1", "-C", "strip=symbols"];

export interface RustToolchain {
  /** absolute path of rustc */
  rustc: string;
  /** `rustc --version` */
  version: string;
  sysroot: string;
  /** a `-C linker=` to pass, or null when rustc finds its rust-lld itself */
  linker: string | null;
  /** how the linker was found, for the report */
  linkerNote: string;
}

export interface RustPluginBuild {
  name: string;
  /** absolute path of the .wasm */
  path: string;
  /** false when the stamp said it was up to date */
  built: boolean;
  /** build time (0 when skipped) */
  ms: number;
  bytes: number;
  /** rustc's warnings while building it ("" when none, or when it was up to date) */
  warnings: string;
}

export interface RustTestRun {
  ok: boolean;
  /** every compiler's and test binary's output, in order */
  output: string;
  ms: number;
}

// ---- finding a compiler ----

export interface RustProbe {
  toolchain: RustToolchain | null;
  /** one line per compiler tried: what it is and what was missing */
  tried: string[];
}

let probeCache: RustProbe | null = null;

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const p = join(dir, cmd);
    // existsSync follows symlinks: a dangling one (Debian's rust-lld without lld) is absent
    if (existsSync(p)) return p;
  }
  return null;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  return execFileSync(cmd, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
    maxBuffer: 16 << 20,
    ...opts,
  });
}

function errText(err: unknown): string {
  const e = err as { stderr?: string | Buffer; message?: string };
  const stderr = e.stderr === undefined ? "" : String(e.stderr).trim();
  return stderr !== "" ? stderr : (e.message ?? String(err));
}

/** The package that provides Debian's rust-lld (`lld-14` for Debian 12), from apt's metadata. */
export function lldPackage(): string {
  try {
    const m = /\blld-\d+\b/.exec(run("apt-cache", ["depends", "rustc"]));
    if (m !== null) return m[0];
  } catch {
    // no apt, or no package lists yet
  }
  return "lld";
}

/** The apt command that installs Debian's matched compiler, wasm32 std and linker. */
export function aptInstallCommand(): string {
  return `apt-get install -y --no-install-recommends rustc libstd-rust-dev-wasm32 ${lldPackage()}`;
}

/**
 * The wasm linkers to try, in order: rust-lld where rustc looks for it (its sysroot's host bin
 * directory, then PATH), then an LLVM wasm-ld passed as -C linker. Another toolchain's rust-lld is
 * no candidate: a newer lld refuses the rlibs of an older rustc ("lib.rmeta is neither Wasm object
 * file nor LLVM bitcode"). The probe build decides which one works.
 */
function linkerCandidates(
  sysroot: string,
  hostTriple: string,
): Array<{ linker: string | null; note: string }> {
  const out: Array<{ linker: string | null; note: string }> = [];
  const own = join(sysroot, "lib/rustlib", hostTriple, "bin/rust-lld");
  const path = onPath("rust-lld");
  if (existsSync(own)) out.push({ linker: null, note: `rust-lld of the toolchain (${own})` });
  else if (path !== null) out.push({ linker: null, note: `rust-lld on PATH (${path})` });
  const llvm: string[] = [];
  try {
    for (const d of readdirSync("/usr/lib")
      .filter(d => /^llvm-\d+$/.test(d))
      .sort()
      .reverse())
      llvm.push(join("/usr/lib", d, "bin/wasm-ld"));
  } catch {
    // no /usr/lib
  }
  for (const p of [onPath("wasm-ld"), ...llvm])
    if (p !== null && existsSync(p)) out.push({ linker: p, note: `-C linker=${p}` });
  return out;
}

const PROBE_SOURCE = `#[no_mangle] pub extern "C" fn probe() -> i32 { let v: Vec<u8> = vec![1, 2]; v.len() as i32 }\n`;

function probeOne(rustc: string): { toolchain: RustToolchain | null; line: string } {
  let version: string, sysroot: string, host: string;
  try {
    version = run(rustc, ["--version"]).trim();
    sysroot = run(rustc, ["--print", "sysroot"]).trim();
    host = /^host: (.+)$/m.exec(run(rustc, ["-vV"]))?.[1]?.trim() ?? "x86_64-unknown-linux-gnu";
  } catch (err) {
    return { toolchain: null, line: `${rustc}: does not run (${errText(err).split("\n")[0]})` };
  }
  const m = /rustc (\d+)\.(\d+)/.exec(version);
  if (
    m === null ||
    Number(m[1]) < MIN_RUSTC[0] ||
    (Number(m[1]) === MIN_RUSTC[0] && Number(m[2]) < MIN_RUSTC[1])
  )
    return {
      toolchain: null,
      line: `${rustc} (${version}): older than rustc ${MIN_RUSTC.join(".")}`,
    };
  const libDir = join(sysroot, "lib/rustlib", TARGET, "lib");
  let hasStd = false;
  try {
    hasStd = readdirSync(libDir).some(f => /^libstd-.*\.rlib$/.test(f));
  } catch {
    hasStd = false;
  }
  if (!hasStd)
    return {
      toolchain: null,
      line: `${rustc} (${version}, sysroot ${sysroot}): no ${TARGET} standard library (no libstd-*.rlib in ${libDir})`,
    };
  const linkers = linkerCandidates(sysroot, host);
  if (linkers.length === 0)
    return {
      toolchain: null,
      line: `${rustc} (${version}): has the ${TARGET} std but no wasm linker (no rust-lld in ${join(sysroot, "lib/rustlib", host, "bin")} or on PATH, no wasm-ld; Debian's /usr/bin/rust-lld is a link into the lld-<llvm version> package, which rustc only suggests)`,
    };
  // compile and link one function: catches a std built by another compiler, a linker that
  // cannot read this rustc's objects
  const dir = join(os.tmpdir(), `rauta-rust-probe-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const failures: string[] = [];
  try {
    writeFileSync(join(dir, "probe.rs"), PROBE_SOURCE);
    for (const l of linkers) {
      try {
        run(rustc, [
          "--crate-type",
          "cdylib",
          "--target",
          TARGET,
          "-C",
          "panic=abort",
          ...(l.linker === null ? [] : ["-C", `linker=${l.linker}`]),
          "-o",
          join(dir, "probe.wasm"),
          join(dir, "probe.rs"),
        ]);
        return {
          toolchain: { rustc, version, sysroot, linker: l.linker, linkerNote: l.note },
          line: `${rustc} (${version}): usable, linker ${l.note}`,
        };
      } catch (err) {
        const lines = errText(err)
          .split("\n")
          .filter(x => /error/.test(x));
        failures.push(`with ${l.note}: ${lines.slice(0, 3).join(" / ")}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    toolchain: null,
    line: `${rustc} (${version}): cannot build for ${TARGET}: ${failures.join("; ")}`,
  };
}

/** Tries $RAUTA_RUSTC alone when set, else Debian's /usr/bin/rustc, then rustc on PATH; the first usable one wins. */
export function probeRustToolchain(opts: { fresh?: boolean } = {}): RustProbe {
  if (probeCache !== null && !opts.fresh) return probeCache;
  const chosen = process.env.RAUTA_RUSTC;
  const path = onPath("rustc");
  const candidates: string[] = [];
  if (chosen !== undefined && chosen !== "") candidates.push(chosen);
  else {
    candidates.push("/usr/bin/rustc");
    if (path !== null) candidates.push(path);
  }
  const tried: string[] = [];
  let toolchain: RustToolchain | null = null;
  for (const rustc of [...new Set(candidates)]) {
    if (!existsSync(rustc)) {
      tried.push(`${rustc}: not found`);
      continue;
    }
    const r = probeOne(rustc);
    tried.push(r.line);
    if (r.toolchain !== null) {
      toolchain = r.toolchain;
      break;
    }
  }
  if (path === null && (chosen ?? "") === "") tried.push("rustc: not on PATH");
  probeCache = { toolchain, tried };
  return probeCache;
}

/** The path of a rustc that builds wasm32-unknown-unknown modules here, or null. */
export function findWasmRustc(): string | null {
  return probeRustToolchain().toolchain?.rustc ?? null;
}

/** Why there is no usable compiler: each one tried, what it lacked, and the command that fixes it. */
export function missingToolchainMessage(probe: RustProbe = probeRustToolchain()): string {
  return [
    `no rustc here can build ${TARGET} modules for the Rust SDK:`,
    ...probe.tried.map(t => `  - ${t}`),
    `fix (Debian/Ubuntu, as root): apt-get update && ${aptInstallCommand()}`,
    `  (or let the build do it: RAUTA_INSTALL_TOOLCHAINS=1, or CI=true; or a rustup toolchain with \`rustup target add ${TARGET}\`; or RAUTA_RUSTC=<path>)`,
  ].join("\n");
}

function aptKnows(pkg: string): boolean {
  try {
    return (
      !/Candidate: \(none\)/.test(run("apt-cache", ["policy", pkg])) &&
      run("apt-cache", ["show", pkg]).trim() !== ""
    );
  } catch {
    return false;
  }
}

function runLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { env, maxBuffer: 64 << 20, timeout: 900_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err === null) resolvePromise(output);
      else
        reject(
          new Error(
            `${cmd} ${args.join(" ")} failed:\n${output.trim().split("\n").slice(-15).join("\n")}`,
          ),
        );
    });
  });
}

/**
 * A usable toolchain, installing Debian's (apt: rustc, libstd-rust-dev-wasm32 and the lld its
 * rust-lld needs) when none is found and CI=true or RAUTA_INSTALL_TOOLCHAINS=1. Rejects with
 * missingToolchainMessage() otherwise, or when the install did not help.
 */
export async function ensureRustToolchain(
  log: (line: string) => void = () => {},
): Promise<RustToolchain> {
  const first = probeRustToolchain();
  if (first.toolchain !== null) return first.toolchain;
  const allowed = process.env.CI === "true" || process.env.RAUTA_INSTALL_TOOLCHAINS === "1";
  if (!allowed) throw new Error(missingToolchainMessage(first));
  if (onPath("apt-get") === null) {
    // no apt (macOS, another distribution): a rustup toolchain can add the target itself
    if (onPath("rustup") === null)
      throw new Error(
        `${missingToolchainMessage(first)}\n(cannot install it: neither apt-get nor rustup here)`,
      );
    log(`$ rustup target add ${TARGET}`);
    await runLogged("rustup", ["target", "add", TARGET], process.env);
    const viaRustup = probeRustToolchain({ fresh: true });
    if (viaRustup.toolchain === null)
      throw new Error(
        `${missingToolchainMessage(viaRustup)}\n(rustup target add ${TARGET} ran and did not help)`,
      );
    return viaRustup.toolchain;
  }
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const sudo = root ? [] : onPath("sudo") !== null ? ["sudo", "-n"] : null;
  if (sudo === null)
    throw new Error(`${missingToolchainMessage(first)}\n(cannot install it: not root and no sudo)`);
  const env: NodeJS.ProcessEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const apt = (args: string[]) => {
    const argv = [...sudo, "apt-get", "-o", "DPkg::Lock::Timeout=300", ...args];
    log(`$ ${argv.join(" ")}`);
    return runLogged(argv[0]!, argv.slice(1), env);
  };
  if (!aptKnows("libstd-rust-dev-wasm32") || !aptKnows("rustc")) await apt(["update"]);
  await apt([
    "install",
    "-y",
    "--no-install-recommends",
    "rustc",
    "libstd-rust-dev-wasm32",
    lldPackage(),
  ]);
  const after = probeRustToolchain({ fresh: true });
  if (after.toolchain === null)
    throw new Error(`${missingToolchainMessage(after)}\n(the apt install ran and did not help)`);
  log(`using ${after.toolchain.rustc} (${after.toolchain.version})`);
  return after.toolchain;
}

// ---- building ----

interface RunResult {
  code: number;
  output: string;
}

function rustc(tc: RustToolchain, args: string[], cwd = RUST_SDK_DIR): Promise<RunResult> {
  return spawnCollect(tc.rustc, args, cwd, process.env);
}

function spawnCollect(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err === null) return resolvePromise({ code: 0, output });
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return reject(new Error(`${cmd}: not found`));
      resolvePromise({
        code: typeof err.code === "number" ? err.code : 1,
        output: `${output}${err.killed ? "\n(killed)" : ""}`,
      });
    });
  });
}

/** Every source a module's bytes depend on: the SDK's, the template's and the examples' .rs files. */
async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== RUST_DIST_DIR && !entry.name.startsWith(".") && entry.name !== "target")
        out.push(...(await sourceFiles(path)));
    } else if (entry.name.endsWith(".rs")) {
      out.push(path);
    }
  }
  return out.sort();
}

/** One hash over every source, the compiler, the linker and the flags. */
async function sourceHash(tc: RustToolchain): Promise<string> {
  return sourcesHash(
    `${tc.rustc}\n${tc.version}\n${tc.linker ?? ""}\n${[...COMMON_FLAGS, ...STD_FEATURE, ...PLUGIN_FLAGS].join(" ")}`,
    RUST_SDK_DIR,
    await sourceFiles(RUST_SDK_DIR),
  );
}

function linkerFlags(tc: RustToolchain): string[] {
  return tc.linker === null ? [] : ["-C", `linker=${tc.linker}`];
}

/** The paths in the module (panic locations) name the SDK, not the checkout. */
const REMAP = [`--remap-path-prefix=${RUST_SDK_DIR}=rauta-plugin`];

/** The SDK as an rlib for wasm32, with its std feature (what the plugins link). */
async function buildSdkRlib(
  tc: RustToolchain,
  outDir: string,
): Promise<{ path: string; warnings: string }> {
  await mkdir(outDir, { recursive: true });
  const rlib = join(outDir, "librauta_plugin.rlib");
  const args = [
    ...COMMON_FLAGS,
    ...STD_FEATURE,
    ...REMAP,
    "--target",
    TARGET,
    "--crate-type",
    "rlib",
    "--crate-name",
    "rauta_plugin",
    "-o",
    rlib,
    join(RUST_SDK_DIR, "src/lib.rs"),
  ];
  const { code, output } = await rustc(tc, args);
  if (code !== 0)
    throw new Error(`rustc of the SDK (plugins-sdk/rust/src, ${TARGET}) failed:\n${output.trim()}`);
  return { path: rlib, warnings: output.trim() };
}

/** Builds every module of RUST_PLUGINS when the stamp is stale, one after the other. */
export async function buildRustPlugins(opts: { force?: boolean } = {}): Promise<RustPluginBuild[]> {
  const tc = await ensureRustToolchain();
  const hash = await sourceHash(tc);
  await mkdir(RUST_DIST_DIR, { recursive: true });
  const results: RustPluginBuild[] = [];
  let rlib: { path: string; warnings: string } | null = null;
  for (const { name, src } of RUST_PLUGINS) {
    const path = join(RUST_DIST_DIR, `${name}.wasm`);
    const stampPath = `${path}.stamp`;
    const existing = await size(path);
    if (!opts.force && existing !== null && (await readStamp(stampPath)) === hash) {
      results.push({ name, path, built: false, ms: 0, bytes: existing, warnings: "" });
      continue;
    }
    const t0 = performance.now();
    rlib ??= await buildSdkRlib(tc, join(WORK_DIR, TARGET));
    // write aside, then rename: a reader never sees half a module
    const tmp = `${path}.${process.pid}.tmp`;
    const args = [
      ...COMMON_FLAGS,
      ...PLUGIN_FLAGS,
      ...REMAP,
      ...linkerFlags(tc),
      "--target",
      TARGET,
      "--crate-type",
      "cdylib",
      "--crate-name",
      `rauta_${name}`,
      "--extern",
      `rauta_plugin=${rlib.path}`,
      "-L",
      `dependency=${join(WORK_DIR, TARGET)}`,
      "-o",
      tmp,
      join(RUST_SDK_DIR, src),
    ];
    const { code, output } = await rustc(tc, args);
    if (code !== 0)
      throw new Error(`rustc of ${name} (plugins-sdk/rust/${src}) failed:\n${output.trim()}`);
    await rename(tmp, path);
    await writeFile(stampPath, `${hash}\n`);
    results.push({
      name,
      path,
      built: true,
      ms: performance.now() - t0,
      bytes: (await size(path))!,
      warnings: `${rlib.warnings}\n${output}`.trim(),
    });
  }
  return results;
}

/**
 * Builds one plugin crate's lib.rs (a `rauta plugin new --lang rust` project) against the SDK
 * into `out`: the same flags as the SDK's own plugins. For `rauta plugin build`.
 */
export async function buildRustCrate(libRs: string, crateName: string, out: string): Promise<void> {
  const tc = await ensureRustToolchain();
  const rlib = await buildSdkRlib(tc, join(WORK_DIR, TARGET));
  const tmp = `${out}.${process.pid}.tmp`;
  const { code, output } = await rustc(tc, [
    ...COMMON_FLAGS,
    ...PLUGIN_FLAGS,
    ...linkerFlags(tc),
    "--target",
    TARGET,
    "--crate-type",
    "cdylib",
    "--crate-name",
    crateName.replace(/[^A-Za-z0-9_]/g, "_"),
    "--extern",
    `rauta_plugin=${rlib.path}`,
    "-L",
    `dependency=${join(WORK_DIR, TARGET)}`,
    "-o",
    tmp,
    libRs,
  ]);
  if (code !== 0) throw new Error(`rustc of ${libRs} failed:\n${output.trim()}`);
  await rename(tmp, out);
}

/** The other rustc on PATH (rustup's, usually newer), when it runs and is not the toolchain's. */
function secondNativeRustc(tc: RustToolchain): string | null {
  const p = onPath("rustc");
  if (p === null || p === tc.rustc) return null;
  try {
    run(p, ["--version"]);
    return p;
  } catch {
    return null;
  }
}

/**
 * The SDK's native tests: the codec against the shared vectors and the JSON reader (`rustc
 * --test` of the crate), the template's own tests against a native rlib of the SDK, and the
 * crate built for wasm32 without `std` (the no_std configuration compiles). Run with the
 * toolchain's rustc, and again with rustc on PATH when that is another compiler (rustup's,
 * newer): the SDK must stay valid Rust for both.
 */
export async function testRustSdk(): Promise<RustTestRun> {
  const tc = await ensureRustToolchain();
  const t0 = performance.now();
  const out: string[] = [];
  let ok = true;
  const step = async (
    what: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ) => {
    const r = await spawnCollect(cmd, args, RUST_SDK_DIR, env);
    out.push(`== ${what}${r.code === 0 ? "" : ` (exit ${r.code})`}`);
    if (r.output.trim() !== "") out.push(r.output.trim());
    if (r.code !== 0) ok = false;
    return r.code === 0;
  };
  const compilers = [tc.rustc, secondNativeRustc(tc)].filter((c): c is string => c !== null);
  for (const [i, compiler] of compilers.entries()) {
    const dir = join(WORK_DIR, `native-${i}`);
    await mkdir(dir, { recursive: true });
    const version = run(compiler, ["--version"]).trim();
    const testBin = join(dir, "rauta_plugin_tests");
    const lib = join(RUST_SDK_DIR, "src/lib.rs");
    const native = ["--edition", "2021", "-C", "debuginfo=0"];
    if (
      !(await step(`${version}: rustc --test src/lib.rs`, compiler, [
        ...native,
        ...STD_FEATURE,
        "--test",
        "--crate-name",
        "rauta_plugin",
        "-o",
        testBin,
        lib,
      ]))
    )
      continue;
    await step(`${version}: codec and JSON tests`, testBin, [], {
      ...process.env,
      RAUTA_VECTORS: VECTORS,
    });
    const rlibDir = join(dir, "lib");
    await mkdir(rlibDir, { recursive: true });
    if (
      await step(`${version}: native rlib`, compiler, [
        ...native,
        ...STD_FEATURE,
        "--crate-type",
        "rlib",
        "--crate-name",
        "rauta_plugin",
        "-o",
        join(rlibDir, "librauta_plugin.rlib"),
        lib,
      ])
    ) {
      const templateBin = join(dir, "template_tests");
      if (
        await step(`${version}: rustc --test template/src/lib.rs`, compiler, [
          ...native,
          "--test",
          "--crate-name",
          "rauta_template",
          "--extern",
          `rauta_plugin=${join(rlibDir, "librauta_plugin.rlib")}`,
          "-L",
          `dependency=${rlibDir}`,
          "-o",
          templateBin,
          join(RUST_SDK_DIR, "template/src/lib.rs"),
        ])
      )
        await step(`${version}: template tests`, templateBin, []);
    }
  }
  const noStd = join(WORK_DIR, `${TARGET}-no-std`);
  await mkdir(noStd, { recursive: true });
  await step(`${tc.version}: the SDK for ${TARGET} without std`, tc.rustc, [
    ...COMMON_FLAGS,
    "--target",
    TARGET,
    "--crate-type",
    "rlib",
    "--crate-name",
    "rauta_plugin",
    "-o",
    join(noStd, "librauta_plugin.rlib"),
    join(RUST_SDK_DIR, "src/lib.rs"),
  ]);
  return { ok, output: out.join("\n"), ms: performance.now() - t0 };
}

if (import.meta.main) {
  const args = new Set(process.argv.slice(2));
  try {
    const tc = await ensureRustToolchain(line => console.log(line));
    console.log(`rustc: ${tc.rustc} (${tc.version}), linker: ${tc.linkerNote}`);
    if (args.has("--check")) process.exit(0);
    if (args.has("--test")) {
      const run = await testRustSdk();
      console.log(run.output);
      if (!run.ok) throw new Error("the Rust SDK's native tests failed");
    }
    for (const b of await buildRustPlugins({ force: args.has("--force") })) {
      const what = b.built ? `built in ${(b.ms / 1000).toFixed(1)} s` : "up to date";
      console.log(
        `${relative(process.cwd(), b.path)}: ${(b.bytes / 1024).toFixed(1)} KiB, ${what}`,
      );
    }
  } catch (err) {
    // stderr directly: `console.error` is missing from the repo's console typing at the moment
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
