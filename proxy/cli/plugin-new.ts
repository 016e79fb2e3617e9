// `rauta plugin new --lang ts|go|rust NAME` writes a plugin project from the SDK's template, and
// `rauta plugin build [DIR]` builds one into DIR/plugin.wasm with the SDK's toolchain for its
// language (AssemblyScript: asc from node_modules; Go: go with GOOS=wasip1; Rust: Debian's rustc
// with the wasm32 std, installed by hack/plugins/build-rust.ts when missing in CI).
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { packagePath } from "../runtime/package-root.ts";

export type Lang = "ts" | "go" | "rust";

const SDK = {
  ts: packagePath("plugins-sdk/assemblyscript"),
  go: packagePath("plugins-sdk/go"),
  rust: packagePath("plugins-sdk/rust"),
};

const REQUEST_YAML = `# A request to try the plugin on: rauta plugin test plugin.wasm --request request.yaml
method: GET
host: example.com
path: /hello
headers:
  accept: application/json
`;

function readme(name: string, lang: Lang): string {
  return `# ${name}

A RAUTA plugin (${lang === "ts" ? "AssemblyScript" : lang === "go" ? "Go" : "Rust"}), from \`rauta plugin new --lang ${lang}\`.
The contract is plugins-sdk/ABI.md in the RAUTA repository.

\`\`\`sh
rauta plugin build .                                        # → plugin.wasm
rauta plugin test plugin.wasm --request request.yaml        # one call, sandboxed as in the proxy
\`\`\`

Then load it into a cluster as a ConfigMap and attach it:

\`\`\`sh
kubectl create configmap ${name} --from-file=plugin.wasm
\`\`\`
\`\`\`yaml
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: { name: ${name} }
spec:
  source: { configMap: { name: ${name}, key: plugin.wasm } }
\`\`\`
and in an HTTPRoute rule: \`filters: [{ type: ExtensionRef, extensionRef: { group: rauta.io, kind: RautaPlugin, name: ${name} } }]\`.
`;
}

const rel = (from: string, to: string) => {
  const r = path.relative(from, to).split(path.sep).join("/");
  return r.startsWith(".") ? r : `./${r}`;
};

export function newPlugin(lang: Lang, name: string, parent: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
    throw new Error(
      `${JSON.stringify(name)}: use a lowercase name of letters, digits and dashes (it becomes a Kubernetes name)`,
    );
  const dir = path.resolve(parent, name);
  if (fs.existsSync(dir)) throw new Error(`${dir} exists already`);
  fs.mkdirSync(dir, { recursive: true });
  if (lang === "ts") {
    fs.mkdirSync(path.join(dir, "assembly"));
    const sdkAssembly = path.join(SDK.ts, "assembly");
    const src = fs
      .readFileSync(path.join(SDK.ts, "template/assembly/index.ts"), "utf8")
      .replace(
        /from "\.\.\/\.\.\/assembly\/index"/,
        `from "${rel(path.join(dir, "assembly"), path.join(sdkAssembly, "index"))}"`,
      );
    fs.writeFileSync(path.join(dir, "assembly/index.ts"), src);
    const asconfig = JSON.parse(
      fs.readFileSync(path.join(SDK.ts, "template/asconfig.json"), "utf8"),
    ) as {
      options: { runtime: string; use: string[]; outFile: string };
    };
    asconfig.options.runtime = rel(dir, path.join(sdkAssembly, "rt/index"));
    asconfig.options.use = [`abort=${rel(dir, path.join(sdkAssembly, "host"))}/rautaAbort`];
    asconfig.options.outFile = "plugin.wasm";
    fs.writeFileSync(path.join(dir, "asconfig.json"), `${JSON.stringify(asconfig, null, 2)}\n`);
  } else if (lang === "go") {
    for (const f of fs.readdirSync(path.join(SDK.go, "template")))
      if (f.endsWith(".go")) fs.copyFileSync(path.join(SDK.go, "template", f), path.join(dir, f));
    const sdkGoMod = fs.readFileSync(path.join(SDK.go, "go.mod"), "utf8");
    const sdkMod = /^module (\S+)/m.exec(sdkGoMod)![1]!;
    // the SDK's own requirements (go-pdk), which the plugin's build list needs too
    const sdkRequires = [...sdkGoMod.matchAll(/^require (\S+ \S+)/gm)].map(
      m => `require ${m[1]} // indirect\n`,
    );
    fs.writeFileSync(
      path.join(dir, "go.mod"),
      `module example.com/${name}\n\ngo 1.24\n\nrequire ${sdkMod} v0.0.0\n\n${sdkRequires.join("")}\nreplace ${sdkMod} => ${SDK.go}\n`,
    );
    // the SDK's own requirement (go-pdk) with its checksums
    fs.copyFileSync(path.join(SDK.go, "go.sum"), path.join(dir, "go.sum"));
  } else {
    fs.mkdirSync(path.join(dir, "src"));
    fs.copyFileSync(path.join(SDK.rust, "template/src/lib.rs"), path.join(dir, "src/lib.rs"));
    fs.writeFileSync(
      path.join(dir, "Cargo.toml"),
      `[package]\nname = "${name}"\nversion = "0.1.0"\nedition = "2021"\nrust-version = "1.63"\npublish = false\n\n[lib]\ncrate-type = ["cdylib"]\npath = "src/lib.rs"\n\n[dependencies]\nrauta-plugin = { path = "${SDK.rust}" }\n`,
    );
  }
  fs.writeFileSync(path.join(dir, "request.yaml"), REQUEST_YAML);
  fs.writeFileSync(path.join(dir, "README.md"), readme(name, lang));
  return dir;
}

export function detectLang(dir: string): Lang | null {
  if (fs.existsSync(path.join(dir, "asconfig.json"))) return "ts";
  if (fs.existsSync(path.join(dir, "go.mod"))) return "go";
  if (fs.existsSync(path.join(dir, "Cargo.toml"))) return "rust";
  return null;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err === null) return resolve();
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        return reject(new Error(`${cmd} is not installed (needed to build this plugin)`));
      reject(new Error(`${cmd} ${args.join(" ")} failed:\n${`${stdout}${stderr}`.trim()}`));
    }),
  );
}

// asc's programmatic API, imported through a variable: its .d.ts declares AssemblyScript's globals
interface Asc {
  main(
    argv: string[],
    options: { stdout: unknown; stderr: { toString(): string } },
  ): Promise<{ error: Error | null }>;
  createMemoryStream(): { toString(): string };
}
const ASC = "assemblyscript/asc";

/** Builds the plugin project in `dir`; returns the path of the module. */
export async function buildPlugin(dir: string): Promise<string> {
  const lang = detectLang(dir);
  if (lang === null)
    throw new Error(
      `${dir}: no asconfig.json, go.mod or Cargo.toml: not a plugin project (rauta plugin new makes one)`,
    );
  const out = path.join(dir, "plugin.wasm");
  if (lang === "ts") {
    const asc = ((await import(ASC)) as { default: Asc }).default;
    const stderr = asc.createMemoryStream();
    const res = await asc.main(
      [
        "assembly/index.ts",
        "--config",
        "asconfig.json",
        "--outFile",
        "plugin.wasm",
        "--baseDir",
        dir,
      ],
      {
        stdout: asc.createMemoryStream(),
        stderr,
      },
    );
    if (res.error !== null)
      throw new Error(`asc failed:\n${stderr.toString()}${res.error.message}`);
  } else if (lang === "go") {
    await run(
      "go",
      ["build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-o", out, "."],
      {
        cwd: dir,
        env: { ...process.env, GOOS: "wasip1", GOARCH: "wasm" },
      },
    );
  } else {
    const { buildRustCrate } = await import("../../hack/plugins/build-rust.ts");
    const name =
      /^name\s*=\s*"([^"]+)"/m.exec(fs.readFileSync(path.join(dir, "Cargo.toml"), "utf8"))?.[1] ??
      "plugin";
    await buildRustCrate(path.join(dir, "src/lib.rs"), name, out);
  }
  return out;
}

export const NEW_USAGE = `usage: rauta plugin new --lang ts|go|rust NAME [--dir PARENT]
       rauta plugin build [DIR]
`;

export async function runNew(argv: string[]): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { lang: { type: "string" }, dir: { type: "string" } },
    }));
  } catch (err) {
    process.stderr.write(`rauta plugin new: ${(err as Error).message}\n${NEW_USAGE}`);
    return 2;
  }
  const lang = values.lang;
  const name = positionals[0];
  if ((lang !== "ts" && lang !== "go" && lang !== "rust") || !name) {
    process.stderr.write(NEW_USAGE);
    return 2;
  }
  try {
    const dir = newPlugin(lang, name, typeof values.dir === "string" ? values.dir : process.cwd());
    const shown = path.relative(process.cwd(), dir);
    process.stdout.write(
      `wrote ${dir}\nnext: rauta plugin build ${shown.startsWith("..") ? dir : shown || "."}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`rauta plugin new: ${(err as Error).message}\n`);
    return 1;
  }
}

export async function runBuild(argv: string[]): Promise<number> {
  const dir = path.resolve(argv[0] ?? ".");
  try {
    const t0 = performance.now();
    const out = await buildPlugin(dir);
    process.stdout.write(
      `built ${path.relative(process.cwd(), out)} (${fs.statSync(out).size} bytes, ${Math.round(performance.now() - t0)} ms)\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`rauta plugin build: ${(err as Error).message}\n`);
    return 1;
  }
}
