// Turns a stream of ConfigMap events (the manifest and its shards) into whole, verified configs.
// A config is emitted once, when its manifest and every shard it lists are present and intact;
// half-written generations are waited for, never served.
import type { CompiledConfig } from "../config/index.ts";
import { ConfigDecodeError, decodeConfigMaps } from "../config/index.ts";

export interface ConfigMapEvent {
  type: "upsert" | "delete";
  object: {
    metadata?: { name?: string };
    data?: Record<string, string>;
    binaryData?: Record<string, string>;
  };
}

export type AssemblyResult =
  | { kind: "config"; config: CompiledConfig }
  | { kind: "waiting"; reason: string }
  | { kind: "unchanged" }
  | { kind: "invalid"; error: string };

export class ConfigAssembler {
  private readonly maps = new Map<string, ConfigMapEvent["object"]>();
  private lastHash: string | undefined;
  private readonly manifestName: string;

  constructor(manifestName: string) {
    this.manifestName = manifestName;
  }

  apply(event: ConfigMapEvent): AssemblyResult {
    const name = event.object.metadata?.name;
    if (name) {
      if (event.type === "delete") this.maps.delete(name);
      else this.maps.set(name, event.object);
    }
    return this.assemble();
  }

  // Forget everything (before a relist replays the current state).
  reset(): void {
    this.maps.clear();
  }

  assemble(): AssemblyResult {
    const manifest = this.maps.get(this.manifestName);
    if (!manifest)
      return { kind: "waiting", reason: `ConfigMap ${this.manifestName} does not exist yet` };
    try {
      const config = decodeConfigMaps(manifest, shard => this.maps.get(shard));
      if (config.hash === this.lastHash) return { kind: "unchanged" };
      this.lastHash = config.hash;
      return { kind: "config", config };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return error instanceof ConfigDecodeError &&
        /not present yet|does not match its sha256/.test(message)
        ? { kind: "waiting", reason: message }
        : { kind: "invalid", error: message };
    }
  }
}
