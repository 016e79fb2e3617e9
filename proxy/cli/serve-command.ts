// `rauta serve -f <file|dir> [-f …] [--workers N]`: standalone mode. Reads Gateway API YAML
// (plus Services, EndpointSlices and kubernetes.io/tls Secrets), compiles it, serves it, and
// watches the files: every change is recompiled and hot-swapped; a broken edit prints the
// problem (file, object, field) and the previous config keeps serving.
//
// With --workers N > 0 (default: one per core) the primary process loads, compiles and watches,
// and node:cluster workers serve; a crashed worker is replaced with the latest config, SIGTERM
// drains them all. --workers 0 serves in this one process.
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { CompileResult, ObjectStatus } from "../../capabilities/compiler/index.ts";
import type { CompiledConfig } from "../config/schema.ts";
import { validateConfig } from "../config/load.ts";
import { sealConfig } from "../config/hash.ts";
import { Proxy } from "../runtime/proxy.ts";
import type { ApplyResult } from "../runtime/proxy.ts";
import { WorkerPool, adminSources, workerEntry } from "./worker-pool.ts";
import type { HandlerOptions } from "../server/handler.ts";
import { referencedCredentials } from "../config/certificates.ts";
import { StaticSecretProvider, secretKey } from "../tls/secrets.ts";
import type { SecretBundle, SecretData } from "../tls/secrets.ts";
import { startAdminServer } from "../observability/admin.ts";
import { createLogger } from "../observability/logger.ts";
import type { TracingSettings } from "../observability/tracing.ts";
import { TRACING_OPTIONS, TRACING_USAGE, tracingFromFlags } from "./tracing-flags.ts";

interface ServeFlags {
  files: string[];
  workers: number;
  metricsPort: number | null;
  address: string | undefined;
  accessLog: boolean;
  watch: boolean;
  forwarded: boolean;
  tracing: TracingSettings | null;
}

const USAGE = `usage: rauta serve -f <file|dir> [-f …] [options]

  -f, --file <path>        Gateway API YAML (files or directories, repeatable)
  -w, --workers <n>        worker processes (default: one per core; 0 = serve in this process)
      --metrics-port <n>   /metrics, /healthz, /readyz port (default 9090; "off" to disable)
      --address <ip>       address for Gateways that request none (default: all local addresses)
      --access-log         log every request (JSON)
      --forwarded          also send the RFC 7239 Forwarded header upstream
      --no-watch           do not reload when the files change
${TRACING_USAGE}`;

function parseFlags(argv: string[]): ServeFlags | string {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: "string", short: "f", multiple: true },
        workers: { type: "string", short: "w" },
        "metrics-port": { type: "string" },
        address: { type: "string" },
        "access-log": { type: "boolean" },
        forwarded: { type: "boolean" },
        "no-watch": { type: "boolean" },
        ...TRACING_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    return (err as Error).message;
  }
  if (values.help) return "";
  const files = (values.file as string[] | undefined) ?? [];
  if (!files.length) return "at least one -f <file|dir> is required";
  const workersRaw = values.workers as string | undefined;
  const workers = workersRaw === undefined ? os.availableParallelism() : Number(workersRaw);
  if (!Number.isInteger(workers) || workers < 0 || workers > 256)
    return `--workers: expected a number 0..256, got ${workersRaw}`;
  const mp = (values["metrics-port"] as string | undefined) ?? "9090";
  const metricsPort = mp === "off" ? null : Number(mp);
  if (
    metricsPort !== null &&
    (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)
  )
    return `--metrics-port: bad port ${mp}`;
  const tracing = tracingFromFlags(values);
  if (tracing !== null && "error" in tracing) return tracing.error;
  return {
    files,
    workers,
    metricsPort,
    address: values.address as string | undefined,
    accessLog: Boolean(values["access-log"]),
    watch: !values["no-watch"],
    forwarded: Boolean(values.forwarded),
    tracing,
  };
}

// ---------------------------------------------------------------------------------------------
// Loading and compiling (primary)

function workerOptions(flags: ServeFlags): Partial<HandlerOptions> {
  return { accessLog: flags.accessLog, forwardedHeader: flags.forwarded };
}

interface Compiled {
  config: CompiledConfig;
  secrets: SecretBundle;
}

function statusProblems(statuses: ObjectStatus[]): string[] {
  const out: string[] = [];
  for (const s of statuses) {
    const name = "namespace" in s ? `${s.kind} ${s.namespace}/${s.name}` : `${s.kind} ${s.name}`;
    const conditions =
      "parents" in s.status
        ? s.status.parents.flatMap(p => p.conditions)
        : "ancestors" in s.status
          ? s.status.ancestors.flatMap(a => a.conditions)
          : s.kind === "Gateway"
            ? [...s.status.conditions, ...s.status.listeners.flatMap(l => l.conditions)]
            : s.status.conditions;
    for (const c of conditions) {
      if (c.status === "False" && ["Accepted", "ResolvedRefs", "Programmed"].includes(c.type))
        out.push(`${name}: ${c.type}=False (${c.reason}): ${c.message}`);
    }
  }
  return [...new Set(out)];
}

// The compiler and the YAML loader are loaded only by the process that compiles (the primary),
// never by workers: they only serve, and every module they do not load is memory they keep.
let compilerModules: Promise<
  [typeof import("../../capabilities/compiler/index.ts"), typeof import("./manifests.ts")]
> | null = null;
const loadCompiler = () =>
  (compilerModules ??= Promise.all([
    import("../../capabilities/compiler/index.ts"),
    import("./manifests.ts"),
  ]));

export async function loadAndCompile(
  files: string[],
  generation: number,
  address: string | undefined,
): Promise<{ ok: true; compiled: Compiled; warnings: string[] } | { ok: false; errors: string[] }> {
  const [{ compile }, { loadManifests, formatManifestError }] = await loadCompiler();
  let loaded;
  try {
    loaded = loadManifests(files);
  } catch (err) {
    return { ok: false, errors: [(err as Error).message] };
  }
  if (loaded.errors.length) return { ok: false, errors: loaded.errors.map(formatManifestError) };
  let result: CompileResult;
  try {
    result = compile(loaded.snapshot, {
      generation,
      now: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      defaultAddress: address ?? "0.0.0.0",
    });
  } catch (err) {
    return { ok: false, errors: [`compiler: ${(err as Error).message}`] };
  }
  const resolved = inlineConfigMapModules(result.config, loaded.configMaps);
  return {
    ok: true,
    compiled: {
      config: resolved.config,
      secrets: {
        keyPairs: [...loaded.tlsSecrets],
        // only those the config uses: a worker holds no credentials it never checks
        credentials: referencedCredentials(resolved.config).flatMap(ref => {
          const data = loaded.secretData.get(secretKey(ref));
          return data ? [[secretKey(ref), data] as [string, SecretData]] : [];
        }),
      },
    },
    warnings: [...statusProblems(result.statuses), ...resolved.problems],
  };
}

/**
 * Standalone mode has no API server to read a plugin's ConfigMap from: a configMap source is
 * replaced by the module itself (inline), taken from the ConfigMaps in the YAML given. A module
 * that is missing stays a configMap source, which the proxy reports as SourceNotFound.
 */
export function inlineConfigMapModules(
  config: CompiledConfig,
  configMaps: Map<string, Map<string, Uint8Array>>,
): { config: CompiledConfig; problems: string[] } {
  const problems: string[] = [];
  let changed = false;
  const plugins = config.plugins.map(p => {
    if (!("configMap" in p.source)) return p;
    const { namespace, name, key } = p.source.configMap;
    const bytes = configMaps.get(`${namespace}/${name}`)?.get(key);
    if (bytes === undefined) {
      problems.push(
        `RautaPlugin ${p.id}: ConfigMap ${namespace}/${name} key ${key} is not in the files given`,
      );
      return p;
    }
    changed = true;
    return { ...p, source: { inline: Buffer.from(bytes).toString("base64") } };
  });
  if (!changed) return { config, problems };
  const { generation, hash: _hash, ...body } = config;
  return { config: sealConfig({ ...body, plugins }, generation), problems };
}

function watchFiles(files: string[], onChange: () => void): () => void {
  let timer: NodeJS.Timeout | null = null;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, 150);
  };
  const watchers: fs.FSWatcher[] = [];
  for (const f of files) {
    try {
      const stat = fs.statSync(f);
      // watch the directory (editors replace files by rename, which a file watcher would lose)
      const dir = stat.isDirectory() ? f : path.dirname(f);
      watchers.push(fs.watch(dir, { recursive: stat.isDirectory() }, fire));
    } catch {
      // a missing path is reported by the loader
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags(argv);
  if (typeof flags === "string") {
    if (flags) process.stderr.write(`rauta serve: ${flags}\n`);
    process.stderr.write(USAGE);
    return flags ? 2 : 0;
  }

  const logger = createLogger();
  let generation = 1;
  const first = await loadAndCompile(flags.files, generation, flags.address);
  if (!first.ok) {
    for (const e of first.errors) process.stderr.write(`error: ${e}\n`);
    process.stderr.write(`rauta serve: ${first.errors.length} error(s); nothing to serve\n`);
    return 1;
  }
  for (const w of first.warnings) process.stderr.write(`warning: ${w}\n`);
  let latest: Compiled = first.compiled;

  const inProcess = flags.workers === 0;
  const secrets = new StaticSecretProvider();
  secrets.load(latest.secrets);
  const proxy = inProcess
    ? new Proxy({
        validate: validateConfig,
        logger,
        secrets,
        handler: workerOptions(flags),
        tracing: flags.tracing,
      })
    : null;
  let shuttingDown = false;
  let pool: WorkerPool | null = null;

  const report = (result: ApplyResult, who: string) => {
    if (result.ok) {
      for (const p of result.problems) process.stderr.write(`warning: ${p}\n`);
      logger.info("serving", { generation: result.generation, worker: who });
    } else {
      for (const p of result.problems) process.stderr.write(`error: ${p}\n`);
      process.stderr.write(
        `rauta serve: config ${result.generation} refused; still serving the previous one\n`,
      );
    }
  };

  if (proxy) report(await proxy.apply(latest.config), "main");
  else {
    pool = new WorkerPool({
      workers: flags.workers,
      entry: await workerEntry(logger),
      settings: { handler: workerOptions(flags), tracing: flags.tracing },
      logger,
      onApplied: (result, worker, first) => {
        if (first || !result.ok) report(result, `worker ${worker}`);
      },
    });
    const published = pool.publish(latest);
    if (!published.ok) report(published, "primary");
  }

  const admin =
    flags.metricsPort === null
      ? null
      : await startAdminServer(adminSources(proxy, pool), flags.metricsPort).catch(err => {
          process.stderr.write(
            `rauta serve: metrics port ${flags.metricsPort}: ${(err as Error).message} (continuing without /metrics)\n`,
          );
          return null;
        });

  let reloading = false;
  let again = false;
  const reload = async () => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    try {
      await reloadOnce();
    } finally {
      reloading = false;
      if (again) {
        again = false;
        void reload();
      }
    }
  };
  const reloadOnce = async () => {
    const result = await loadAndCompile(flags.files, generation + 1, flags.address);
    if (!result.ok) {
      for (const e of result.errors) process.stderr.write(`error: ${e}\n`);
      process.stderr.write(
        `rauta serve: ${result.errors.length} error(s) in the edited files; still serving generation ${generation}\n`,
      );
      return;
    }
    if (
      result.compiled.config.hash === latest.config.hash &&
      JSON.stringify(result.compiled.secrets) === JSON.stringify(latest.secrets)
    )
      return;
    generation++;
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    latest = result.compiled;
    process.stderr.write(`rauta serve: files changed; applying generation ${generation}\n`);
    if (proxy) {
      secrets.load(latest.secrets);
      void proxy.apply(latest.config).then(r => report(r, "main"));
    } else {
      const published = pool!.publish(latest);
      if (!published.ok) report(published, "primary");
    }
  };
  const stopWatching = flags.watch ? watchFiles(flags.files, () => void reload()) : () => {};

  const listeners = latest.config.listeners.map(
    l => `${l.protocol.toLowerCase()}://${l.address === "0.0.0.0" ? "*" : l.address}:${l.port}`,
  );
  process.stderr.write(
    `rauta serve: ${listeners.join(", ") || "no listeners"}; ${inProcess ? "1 process" : `${flags.workers} workers`}` +
      `${admin ? `; metrics on :${(admin.address() as { port: number }).port}/metrics` : ""}${flags.watch ? "; watching for changes" : ""}\n`,
  );

  return new Promise<number>(resolve => {
    const shutdown = (signal: string) => {
      if (shuttingDown) return;
      shuttingDown = true;
      process.stderr.write(`rauta serve: ${signal}: draining\n`);
      stopWatching();
      admin?.close();
      const graceMs = 10_000;
      const done = () => resolve(0);
      if (proxy) void proxy.close(graceMs).then(done);
      else void pool!.drain(graceMs).then(done);
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
