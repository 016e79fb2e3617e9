// A `rauta serve` worker process (node:cluster): serves whatever config the primary sends, never
// compiles. Handler options come from the primary in RAUTA_WORKER_OPTIONS. Kept free of the
// compiler and the YAML loader so a worker only loads (and holds in memory) the data plane.
import client from "prom-client";
import type { CompiledConfig } from "../config/schema.ts";
import { Proxy } from "../runtime/proxy.ts";
import type { ApplyResult } from "../runtime/proxy.ts";
import type { HandlerOptions } from "../server/handler.ts";
import { StaticSecretProvider } from "../tls/secrets.ts";
import type { TlsKeyPair } from "../tls/secrets.ts";
import { createLogger } from "../observability/logger.ts";
import { compactHeap } from "../runtime/v8-flags.ts";

export type ToWorker =
  | { type: "config"; config: CompiledConfig; secrets: Array<[string, TlsKeyPair]> }
  | { type: "drain"; graceMs: number };
export type FromWorker = { type: "applied"; result: ApplyResult } | { type: "started" };

function runWorker() {
  const logger = createLogger();
  const secrets = new StaticSecretProvider();
  const handler = JSON.parse(process.env.RAUTA_WORKER_OPTIONS ?? "{}") as Partial<HandlerOptions>;
  const proxy = new Proxy({ logger, secrets, handler });
  // metrics of this worker are collected by the primary's AggregatorRegistry
  // (constructing an AggregatorRegistry installs the worker's reply handler)
  client.AggregatorRegistry.setRegistries([proxy.metrics.registry]);
  new client.AggregatorRegistry();
  let draining = false;
  process.on("message", (msg: ToWorker) => {
    if (msg.type === "config") {
      secrets.replace(new Map(msg.secrets));
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
