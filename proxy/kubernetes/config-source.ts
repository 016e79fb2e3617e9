// --config-source=kubernetes: watch the rauta-config ConfigMaps through the API and hand every
// new verified config to the proxy. The watch lists first (so a restarted proxy serves the last
// published config at once, without waiting for the controller), then streams changes; KFC
// relists on watch loss and we relist on our own timer as a backstop.
import { K8s, kind, WatchEvent } from "kubernetes-fluent-client";
import type { CompiledConfig } from "../config/index.ts";
import { DEFAULT_CONFIG_MAP, PART_OF_LABEL } from "../config/index.ts";
import { ConfigAssembler } from "./config-assembler.ts";

export interface KubernetesConfigSourceOptions {
  namespace: string;
  name?: string;
  onConfig: (config: CompiledConfig) => void;
  onProblem?: (message: string, fields: Record<string, unknown>) => void;
  relistIntervalSec?: number;
}

export class KubernetesConfigSource {
  private readonly options: KubernetesConfigSourceOptions;
  private readonly assembler: ConfigAssembler;
  private watcher: { close(): void } | undefined;

  constructor(options: KubernetesConfigSourceOptions) {
    this.options = options;
    this.assembler = new ConfigAssembler(options.name ?? DEFAULT_CONFIG_MAP);
  }

  async start(): Promise<void> {
    const { namespace, name = DEFAULT_CONFIG_MAP, onProblem } = this.options;
    const watcher = K8s(kind.ConfigMap)
      .InNamespace(namespace)
      .WithLabel(PART_OF_LABEL, name)
      .Watch(
        (map, phase) => {
          const result = this.assembler.apply({
            type: phase === "DELETED" ? "delete" : "upsert",
            object: map,
          });
          if (result.kind === "config") this.options.onConfig(result.config);
          else if (result.kind === "invalid")
            onProblem?.("refused config from ConfigMaps", { error: result.error });
        },
        { relistIntervalSec: this.options.relistIntervalSec ?? 60, resyncDelaySec: 1 },
      );
    watcher.events.on(WatchEvent.NETWORK_ERROR, (error: unknown) =>
      onProblem?.("config watch lost; reconnecting", { error: String(error) }),
    );
    watcher.events.on(WatchEvent.GIVE_UP, (error: unknown) =>
      onProblem?.("config watch gave up", { error: String(error) }),
    );
    this.watcher = watcher;
    await watcher.start();
  }

  stop(): void {
    this.watcher?.close();
  }
}
