// A serving worker process (node:cluster) of `rauta serve` and `rauta proxy --workers N`: serves
// whatever config its primary sends (worker-pool.ts), never compiles or talks to Kubernetes.
// Settings come from the primary in RAUTA_WORKER_SETTINGS. Kept free of the compiler, the YAML
// loader and the Kubernetes client so a worker only loads (and holds in memory) the data plane.
import "../runtime/warnings.ts";
import client from "prom-client";
import type { CompiledConfig } from "../config/schema.ts";
import { checkConfig } from "../config/check.ts";
import { Proxy } from "../runtime/proxy.ts";
import type { ApplyResult } from "../runtime/proxy.ts";
import type { HandlerOptions } from "../server/handler.ts";
import { StaticSecretProvider } from "../tls/secrets.ts";
import type { SecretBundle } from "../tls/secrets.ts";
import { createLogger } from "../observability/logger.ts";
import { compactHeap } from "../runtime/v8-flags.ts";
import type { TracingSettings } from "../observability/tracing.ts";

export type ToWorker =
  | { type: "config"; config: CompiledConfig; secrets: SecretBundle }
  | { type: "drain"; graceMs: number };
export interface WorkerSettings {
  handler: Partial<HandlerOptions>;
  /** bind every listener on all local addresses instead of its Gateway address */
  bindAll?: boolean;
  /** request tracing for listeners whose config sets none (--tracing-* flags) */
  tracing?: TracingSettings | null;
}
export type FromWorker = { type: "applied"; result: ApplyResult } | { type: "started" };

function runWorker() {
  const logger = createLogger();
  const secrets = new StaticSecretProvider();
  const settings = JSON.parse(
    process.env.RAUTA_WORKER_SETTINGS ?? '{"handler":{}}',
  ) as WorkerSettings;
  const proxy = new Proxy({
    // the primary validated the config against the schema before sending it (worker-pool.ts)
    validate: (input, options) => checkConfig(input as CompiledConfig, options),
    logger,
    secrets,
    handler: settings.handler,
    tracing: settings.tracing ?? null,
    ...(settings.bindAll ? { bindAddress: () => "0.0.0.0" } : {}),
  });
  // metrics of this worker are collected by the primary's AggregatorRegistry
  // (constructing an AggregatorRegistry installs the worker's reply handler)
  client.AggregatorRegistry.setRegistries([proxy.metrics.registry]);
  new client.AggregatorRegistry();
  let draining = false;
  process.on("message", (msg: ToWorker) => {
    if (msg.type === "config") {
      secrets.load(msg.secrets);
      void proxy.apply(msg.config).then(result => {
        process.send?.({ type: "applied", result } satisfies FromWorker);
        compactHeap(); // the garbage of receiving and preparing it (runtime/v8-flags.ts)
      });
    } else if (msg.type === "drain" && !draining) {
      draining = true;
      void proxy.close(msg.graceMs).then(() => process.exit(0));
    }
  });
  process.on("SIGTERM", () => {}); // the primary coordinates the drain
  process.on("SIGINT", () => {});
  process.send?.({ type: "started" } satisfies FromWorker);
}

if (process.send) runWorker();
