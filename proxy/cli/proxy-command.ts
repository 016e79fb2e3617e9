// `rauta proxy`: the data plane as it runs in a cluster (Deployment or DaemonSet). It never
// compiles: it serves the CompiledConfig the control plane published.
//
//   --config-source=kubernetes  watch the rauta-config ConfigMaps of --namespace through the API;
//                               TLS from the certificate copies in the same namespace; heartbeat
//                               Lease reports the generation served (Programmed on the Gateway)
//   --config-source=file        read --config (a config JSON file, or a mounted rauta-config
//                               ConfigMap directory with manifest.json + config.json) and reload
//                               it when it changes
// A config that fails validation is refused and the last good one keeps serving.
import { existsSync, readFileSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeConfigMaps } from "../config/index.ts";
import type { CompiledConfig } from "../config/index.ts";
import { KubernetesConfigSource } from "../kubernetes/config-source.ts";
import { KubernetesSecretProvider } from "../kubernetes/secret-provider.ts";
import { LeaseReporter } from "../kubernetes/lease-reporter.ts";
import { startAdminServer } from "../observability/admin.ts";
import { createLogger } from "../observability/logger.ts";
import { Proxy } from "../runtime/proxy.ts";
import { StaticSecretProvider } from "../tls/secrets.ts";
import { compactHeap } from "../runtime/v8-flags.ts";

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
`;

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
  const proxy = new Proxy({
    logger,
    secrets,
    handler: { accessLog: values["access-log"] === true },
    ...(values["bind-all"] ? { bindAddress: () => "0.0.0.0" } : {}),
  });
  let served: number | undefined;
  const apply = async (config: unknown, origin: string) => {
    const result = await proxy.apply(config);
    compactHeap(); // the garbage of reading and preparing it (runtime/v8-flags.ts)
    if (result.ok) {
      served = result.generation;
      logger.info("serving config", {
        generation: result.generation,
        origin,
        problems: result.problems,
      });
    } else
      logger.error("refused config; still serving the previous one", {
        generation: result.generation,
        origin,
        problems: result.problems,
      });
  };

  const metricsPort = Number(values["metrics-port"]);
  const admin = await startAdminServer(
    {
      metrics: async () => ({
        contentType: proxy.metrics.registry.contentType,
        body: await proxy.metrics.registry.metrics(),
      }),
      ready: () => proxy.ready,
    },
    metricsPort,
  );

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
    const heartbeat = new LeaseReporter({
      namespace,
      identity,
      generation: () => served,
      onProblem: (m, f) => logger.warn(m, f),
    });
    heartbeat.start();
    stops.push(
      () => configs.stop(),
      () => kube.stop(),
      () => heartbeat.stop(),
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
      void proxy.close(10_000).then(() => resolve(0));
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}
