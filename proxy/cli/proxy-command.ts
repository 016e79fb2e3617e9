// `rauta proxy`: the data plane as it runs in a cluster (Deployment or DaemonSet). It never
// compiles: it serves the CompiledConfig the control plane published.
//
//   --config-source=kubernetes  watch the rauta-config ConfigMaps of --namespace through the API;
//                               TLS from the certificate copies and plugin modules from the
//                               module copies in the same namespace; heartbeat Lease reports the
//                               generation served (Programmed on the Gateway) and the plugins
//                               that did not load (RautaPlugin Ready)
//   --config-source=file        read --config (a config JSON file, or a mounted rauta-config
//                               ConfigMap directory with manifest.json + config.json) and reload
//                               it when it changes
// A config that fails validation is refused and the last good one keeps serving.
// --workers N > 0 serves in N worker processes (worker-pool.ts) while this process watches the
// config and certificates, reports the generation every worker serves, and aggregates metrics;
// the default, 0, serves in this process: a pod scales by replicas and CPU limits, and the
// cores Node sees in a container are the node's, not the pod's share.
import { existsSync, readFileSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import {
  decodeConfigMaps,
  referencedCertificates,
  referencedCredentials,
} from "../config/index.ts";
import type { CompiledConfig, PluginProblemsReport } from "../config/index.ts";
import { validateConfig } from "../config/load.ts";
import { KubernetesConfigSource } from "../kubernetes/config-source.ts";
import { KubernetesSecretProvider } from "../kubernetes/secret-provider.ts";
import { LeaseReporter } from "../kubernetes/lease-reporter.ts";
import { ConfigMapSourceInliner, configMapModuleReader } from "../kubernetes/plugin-modules.ts";
import { startAdminServer } from "../observability/admin.ts";
import { createLogger } from "../observability/logger.ts";
import { Proxy } from "../runtime/proxy.ts";
import type { ApplyResult } from "../runtime/proxy.ts";
import { StaticSecretProvider } from "../tls/secrets.ts";
import { compactHeap } from "../runtime/v8-flags.ts";
import type { SecretBundle, SecretProvider } from "../tls/secrets.ts";
import { secretKey } from "../tls/secrets.ts";
import { WorkerPool, adminSources, workerEntry } from "./worker-pool.ts";
import { TRACING_OPTIONS, TRACING_USAGE, tracingFromFlags } from "./tracing-flags.ts";

const USAGE = `usage: rauta proxy --config-source kubernetes|file [options]

  --config-source <s>   kubernetes (watch ConfigMaps through the API) or file
  --config <path>       with file: a config JSON file or a mounted rauta-config ConfigMap directory
  --namespace <ns>      with kubernetes: namespace of the config, certificates and heartbeat
                        (default: $POD_NAMESPACE, else rauta-system)
  --config-map <name>   with kubernetes: name of the manifest ConfigMap (default rauta-config)
  --identity <id>       with kubernetes: heartbeat identity (default: $POD_NAME, else hostname)
  --bind-all            bind every listener on all local addresses instead of its Gateway address
  --metrics-port <n>    /metrics, /healthz, /readyz (default 9090)
  --access-log          log every request (JSON)
  --workers <n>         serve in n worker processes (default 0: in this process)
${TRACING_USAGE}`;

/**
 * The TLS key pairs and credentials `config` references, for workers (which never talk to
 * Kubernetes).
 */
export function referencedSecretBundle(config: unknown, secrets: SecretProvider): SecretBundle {
  // not validated yet (the workers validate): entries not shaped like references are skipped
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const ref = (v: unknown) => {
    const parsed = Ref.safeParse(v);
    return parsed.success ? [parsed.data] : [];
  };
  const field = (v: unknown, name: string): unknown =>
    v !== null && typeof v === "object" ? (v as Record<string, unknown>)[name] : undefined;
  const c = (config ?? {}) as { listeners?: unknown; clusters?: unknown; routes?: unknown };
  const certificates = referencedCertificates({
    listeners: list(c.listeners).map(l => ({
      tls: {
        certificates: list(field(field(l, "tls"), "certificates"))
          .flatMap(x => ref(field(x, "secretRef")))
          .map(secretRef => ({ secretRef })),
      },
    })),
    clusters: list(c.clusters).flatMap(x =>
      ref(field(field(x, "tls"), "clientCertificate")).map(clientCertificate => ({
        tls: { clientCertificate },
      })),
    ),
  });
  const credentials = referencedCredentials({
    routes: list(c.routes).map(r => {
      const basic = ref(field(field(r, "basicAuth"), "secretRef"))[0];
      return {
        ...(basic ? { basicAuth: { secretRef: basic } } : {}),
        apiKeyAuth: { secretRefs: list(field(field(r, "apiKeyAuth"), "secretRefs")).flatMap(ref) },
      };
    }),
  });
  const out: SecretBundle = { keyPairs: [], credentials: [] };
  for (const r of certificates) {
    const pair = secrets.get(r);
    if (pair) out.keyPairs.push([secretKey(r), pair]);
  }
  for (const r of credentials) {
    const data = secrets.data(r);
    if (data) out.credentials.push([secretKey(r), data]);
  }
  return out;
}

const Ref = z.object({ namespace: z.string(), name: z.string() });

// A file is either a CompiledConfig or a mounted ConfigMap directory (projected keys as files).
export function readConfigPath(path: string): CompiledConfig {
  if (statSync(path).isDirectory()) {
    const read = (key: string) =>
      existsSync(join(path, key)) ? readFileSync(join(path, key), "utf8") : undefined;
    const data: Record<string, string> = {};
    for (const key of ["manifest.json", "config.json"]) {
      const value = read(key);
      if (value !== undefined) data[key] = value;
    }
    return decodeConfigMaps({ data }, () => undefined);
  }
  return JSON.parse(readFileSync(path, "utf8")) as CompiledConfig;
}

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "config-source": { type: "string" },
        config: { type: "string" },
        namespace: { type: "string" },
        "config-map": { type: "string" },
        identity: { type: "string" },
        "bind-all": { type: "boolean" },
        "metrics-port": { type: "string", default: "9090" },
        "access-log": { type: "boolean" },
        workers: { type: "string", default: "0" },
        ...TRACING_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    process.stderr.write(`rauta proxy: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const source = values["config-source"];
  if (
    values.help ||
    (source !== "kubernetes" && source !== "file") ||
    (source === "file" && !values.config)
  ) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0 || workers > 256) {
    process.stderr.write(
      `rauta proxy: --workers: expected a number 0..256, got ${values.workers}\n`,
    );
    return 2;
  }
  const tracing = tracingFromFlags(values);
  if (tracing !== null && "error" in tracing) {
    process.stderr.write(`rauta proxy: ${tracing.error}\n`);
    return 2;
  }
  const logger = createLogger();
  const namespace =
    (values.namespace as string | undefined) ?? process.env.POD_NAMESPACE ?? "rauta-system";
  const identity =
    (values.identity as string | undefined) ??
    process.env.POD_NAME ??
    process.env.HOSTNAME ??
    "proxy";
  const secrets =
    source === "kubernetes" ? new KubernetesSecretProvider(namespace) : new StaticSecretProvider();
  const handler = { accessLog: values["access-log"] === true };
  const bindAll = values["bind-all"] === true;
  const proxy =
    workers === 0
      ? new Proxy({
          validate: validateConfig,
          logger,
          secrets,
          handler,
          tracing,
          ...(bindAll ? { bindAddress: () => "0.0.0.0" } : {}),
          // configMap plugin sources: the controller's copies, in this namespace only
          ...(source === "kubernetes"
            ? { plugins: { readConfigMap: configMapModuleReader(namespace) } }
            : {}),
        })
      : null;
  let served: number | undefined;
  // the plugin problems of the generation served, for the heartbeat
  let pluginProblems: PluginProblemsReport | undefined;
  let heartbeat: LeaseReporter | undefined;
  const notePlugins = (result: ApplyResult) => {
    if (!result.ok) return; // a refused config changes nothing that serves
    pluginProblems = { generation: result.generation, problems: result.pluginProblems ?? [] };
    // tell the controller now rather than at the next renewal
    void heartbeat?.report().catch(() => {});
  };
  const report = (ok: boolean, generation: number, problems: string[], origin: string) => {
    if (ok) {
      served = generation;
      logger.info("serving config", { generation, origin, problems });
    } else
      logger.error("refused config; still serving the previous one", {
        generation,
        origin,
        problems,
      });
  };
  const pool =
    workers > 0
      ? new WorkerPool({
          workers,
          entry: await workerEntry(logger),
          settings: { handler, bindAll, tracing },
          logger,
          onApplied: (result, worker, first) => {
            if (first || !result.ok)
              report(result.ok, result.generation, result.problems, `worker ${worker}`);
            // every worker loads the same modules: the first one speaks for them
            if (first) notePlugins(result);
          },
        })
      : null;
  let latest: unknown;
  // workers never talk to Kubernetes: they get configMap plugin modules inline
  const inliner =
    pool && source === "kubernetes"
      ? new ConfigMapSourceInliner(configMapModuleReader(namespace))
      : null;
  const apply = async (config: unknown, origin: string) => {
    latest = config;
    if (pool) {
      let delivered = config;
      if (inliner) {
        const inlined = await inliner.inline(config);
        // a newer config arrived while the modules were read: that one goes out instead
        if (latest !== config) return;
        for (const problem of inlined.problems)
          logger.warn("cannot read a plugin module for the workers", { problem });
        delivered = inlined.config;
      }
      const published = pool.publish({
        config: delivered,
        secrets: referencedSecretBundle(config, secrets),
      });
      if (!published.ok) report(false, published.generation, published.problems, origin);
      return;
    }
    const result = await proxy!.apply(config);
    compactHeap(); // the garbage of reading and preparing it (runtime/v8-flags.ts)
    report(result.ok, result.generation, result.problems, origin);
    notePlugins(result);
  };
  // workers get certificates with the config: a rotated one goes out with the latest config again
  if (pool)
    secrets.onChange?.(() => {
      if (latest !== undefined) void apply(latest, "certificate change");
    });

  const metricsPort = Number(values["metrics-port"]);
  const admin = await startAdminServer(adminSources(proxy, pool), metricsPort);

  const stops: Array<() => void> = [() => admin.close()];
  if (source === "kubernetes") {
    const kube = secrets as KubernetesSecretProvider;
    await kube.start();
    const configs = new KubernetesConfigSource({
      namespace,
      ...(values["config-map"] ? { name: values["config-map"] as string } : {}),
      onConfig: config => void apply(config, "kubernetes"),
      onProblem: (message, fields) => logger.warn(message, fields),
    });
    await configs.start();
    const reporter = new LeaseReporter({
      namespace,
      identity,
      // with workers: the generation every one of them serves
      generation: () => (pool ? pool.servedGeneration : served),
      pluginProblems: () => pluginProblems,
      onProblem: (m, f) => logger.warn(m, f),
    });
    heartbeat = reporter;
    reporter.start();
    stops.push(
      () => configs.stop(),
      () => kube.stop(),
      () => reporter.stop(),
    );
  } else {
    const path = values.config as string;
    const load = () => {
      try {
        void apply(readConfigPath(path), path);
      } catch (error) {
        logger.error("cannot read config; still serving the previous one", {
          path,
          error: (error as Error).message,
        });
      }
    };
    load();
    // A mounted ConfigMap changes by swapping a symlink, so watch the directory and debounce.
    let timer: NodeJS.Timeout | undefined;
    const watcher = watch(path, () => {
      clearTimeout(timer);
      timer = setTimeout(load, 50);
    });
    stops.push(() => watcher.close());
  }

  return new Promise<number>(resolve => {
    const shutdown = (signal: string) => {
      logger.info("draining", { signal });
      for (const stop of stops) stop();
      void (proxy ? proxy.close(10_000) : pool!.drain(10_000)).then(() => resolve(0));
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
