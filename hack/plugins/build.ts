// Builds RAUTA's AssemblyScript plugins with the installed compiler: the four built-ins into
// plugins-sdk/builtins/dist/<name>.wasm, and the SDK's own test modules and the `rauta plugin new
// --lang ts` template into plugins-sdk/assemblyscript/dist/. A module is rebuilt only when the
// hash of what it is made of (its sources, the SDK's, the compiler version and flags) differs
// from the stamp written next to it.
//   node hack/plugins/build.ts            build what is out of date
//   node hack/plugins/build.ts --force    rebuild everything
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The part of asc's programmatic API this script uses. Typed here, and imported through a
 * variable, because assemblyscript/asc's own .d.ts declares AssemblyScript's globals (its own
 * `console`, `i32`, ...) into whichever TypeScript program includes it: the whole repo's.
 */
interface MemoryStream {
  toString(): string;
}
interface Asc {
  main(
    argv: string[],
    options: { stdout: MemoryStream; stderr: MemoryStream },
  ): Promise<{ error: Error | null }>;
  createMemoryStream(): MemoryStream;
}
const ASC_MODULE = "assemblyscript/asc";
let ascLoaded: Promise<Asc> | null = null;
function loadAsc(): Promise<Asc> {
  ascLoaded ??= import(ASC_MODULE).then(m => (m as { default: Asc }).default);
  return ascLoaded;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SDK = path.join(ROOT, "plugins-sdk/assemblyscript");
const SDK_SOURCES = path.join(SDK, "assembly");
const BUILTINS = path.join(ROOT, "plugins-sdk/builtins");
export const BUILTINS_DIST = path.join(BUILTINS, "dist");
export const SDK_DIST = path.join(SDK, "dist");
export const BUILTIN_NAMES = ["jwt-auth", "cors", "rate-limit", "request-transformer"] as const;
/** the custom plugin of the standalone demo (examples/plugins/) */
const EXAMPLE_HELLO = path.join(ROOT, "examples/plugins/hello");

/** The import modules a RAUTA AssemblyScript plugin may use; anything else is a build error. */
const ALLOWED_IMPORT_MODULES = new Set(["rauta:host", "extism:host/env"]);

export interface BuiltPlugin {
  name: string;
  path: string;
  bytes: number;
}

interface Target {
  name: string;
  /** the entry file */
  entry: string;
  /** the directory whose .ts files (besides the SDK's) the module is made of */
  sources: string;
  out: string;
}

export function targets(): Target[] {
  const list: Target[] = [
    {
      name: "sdk-noop",
      entry: path.join(SDK, "test/assembly/noop.ts"),
      sources: path.join(SDK, "test/assembly"),
      out: path.join(SDK_DIST, "sdk-noop.wasm"),
    },
    {
      name: "sdk-vectors",
      entry: path.join(SDK, "test/assembly/vectors.ts"),
      sources: path.join(SDK, "test/assembly"),
      out: path.join(SDK_DIST, "sdk-vectors.wasm"),
    },
    {
      name: "sdk-body",
      entry: path.join(SDK, "test/assembly/body.ts"),
      sources: path.join(SDK, "test/assembly"),
      out: path.join(SDK_DIST, "sdk-body.wasm"),
    },
    {
      name: "template",
      entry: path.join(SDK, "template/assembly/index.ts"),
      sources: path.join(SDK, "template/assembly"),
      out: path.join(SDK_DIST, "template.wasm"),
    },
  ];
  list.push({
    name: "example-hello",
    entry: path.join(EXAMPLE_HELLO, "assembly/index.ts"),
    sources: path.join(EXAMPLE_HELLO, "assembly"),
    out: path.join(EXAMPLE_HELLO, "build/hello.wasm"),
  });
  for (const name of BUILTIN_NAMES)
    list.push({
      name,
      entry: path.join(BUILTINS, name, "assembly/index.ts"),
      sources: path.join(BUILTINS, name, "assembly"),
      out: path.join(BUILTINS_DIST, `${name}.wasm`),
    });
  return list;
}

/** asc's arguments for an entry; paths are relative to ROOT, asc's base directory. */
export function ascArgs(entry: string, out: string): string[] {
  const rel = (p: string) => path.relative(ROOT, p).split(path.sep).join("/");
  return [
    rel(entry),
    "--outFile",
    rel(out),
    // the SDK's per-call arena (assembly/rt/arena.ts); asc appends .ts itself
    "--runtime",
    rel(path.join(SDK_SOURCES, "rt/index")),
    // a guest abort (failed assertion, throw) logs and traps instead of importing env.abort
    "--use",
    `abort=${rel(path.join(SDK_SOURCES, "host"))}/rautaAbort`,
    "-O3",
    "--noColors",
  ];
}

function sourceFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

function ascVersion(): string {
  const pkg = JSON.parse(
    fs.readFileSync(path.join(ROOT, "node_modules/assemblyscript/package.json"), "utf8"),
  ) as {
    version: string;
  };
  return pkg.version;
}

function stampOf(t: Target, version: string): string {
  const h = createHash("sha256");
  h.update(`asc ${version}\n${ascArgs(t.entry, t.out).join(" ")}\n`);
  for (const f of [...sourceFiles(SDK_SOURCES), ...sourceFiles(t.sources)]) {
    h.update(`${path.relative(ROOT, f)}\n`);
    h.update(fs.readFileSync(f));
  }
  return h.digest("hex");
}

const stampPath = (t: Target) => `${t.out}.stamp`;

async function compile(t: Target): Promise<void> {
  const asc = await loadAsc();
  const stderr = asc.createMemoryStream();
  const stdout = asc.createMemoryStream();
  const res = await asc.main([...ascArgs(t.entry, t.out), "--baseDir", ROOT], { stdout, stderr });
  if (res.error !== null)
    throw new Error(
      `asc failed on ${t.name} (${path.relative(ROOT, t.entry)}):\n${stderr.toString()}${res.error.message}`,
    );
  const bytes = fs.readFileSync(t.out);
  const bad = WebAssembly.Module.imports(new WebAssembly.Module(bytes)).filter(
    i => !ALLOWED_IMPORT_MODULES.has(i.module),
  );
  if (bad.length > 0) {
    fs.rmSync(t.out);
    throw new Error(
      `${t.name} imports ${bad.map(i => `${i.module}.${i.name}`).join(", ")}: only rauta:host and extism:host/env are provided`,
    );
  }
}

export interface BuildOptions {
  force?: boolean;
  /** only these targets (by name) */
  only?: string[];
  log?: (line: string) => void;
}

// The demo's RautaPlugin names ConfigMap hello-plugin: `rauta serve -f examples/` reads it from here.
function writeExampleConfigMap(wasm: string) {
  const b64 = fs.readFileSync(wasm).toString("base64");
  fs.writeFileSync(
    path.join(path.dirname(wasm), "configmap.yaml"),
    `# Generated by hack/plugins/build.ts from examples/plugins/hello (do not edit).\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: hello-plugin, namespace: default }\nbinaryData:\n  plugin.wasm: ${b64}\n`,
  );
}

/** Builds what is out of date; returns every target's output. Throws with asc's message on error. */
export async function buildPlugins(opts: BuildOptions = {}): Promise<BuiltPlugin[]> {
  const log = opts.log ?? (() => {});
  const version = ascVersion();
  const out: BuiltPlugin[] = [];
  const t0 = performance.now();
  let built = 0;
  for (const t of targets()) {
    if (opts.only !== undefined && !opts.only.includes(t.name)) continue;
    const stamp = stampOf(t, version);
    const upToDate =
      !opts.force &&
      fs.existsSync(t.out) &&
      fs.existsSync(stampPath(t)) &&
      fs.readFileSync(stampPath(t), "utf8") === stamp;
    if (!upToDate) {
      fs.mkdirSync(path.dirname(t.out), { recursive: true });
      const t1 = performance.now();
      await compile(t);
      fs.writeFileSync(stampPath(t), stamp);
      built++;
      log(
        `built ${path.relative(ROOT, t.out)} (${fs.statSync(t.out).size} bytes, ${Math.round(performance.now() - t1)} ms)`,
      );
    }
    if (t.name === "example-hello") writeExampleConfigMap(t.out);
    out.push({ name: t.name, path: t.out, bytes: fs.statSync(t.out).size });
  }
  log(
    built === 0
      ? "plugins up to date"
      : `built ${built} plugin(s) in ${Math.round(performance.now() - t0)} ms`,
  );
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await buildPlugins({ force: process.argv.includes("--force"), log: line => console.log(line) });
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
