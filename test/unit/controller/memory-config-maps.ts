// ConfigMaps in memory for the controller's plugin-module step (plugin-modules.ts), and small
// modules to put in them.
import { createHash } from "node:crypto";
import type {
  ConfigMapAccess,
  ConfigMapObject,
  ModuleCopy,
} from "../../../capabilities/controller/plugin-modules.ts";

// A minimal valid module header, then payload bytes (the controller checks the magic only).
export const wasm = (payload = "hello"): Buffer =>
  Buffer.concat([
    Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]),
    Buffer.from(payload),
  ]);
export const digestOf = (bytes: Uint8Array) =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** ConfigMaps in memory, with every call recorded. */
export class MemoryConfigMaps implements ConfigMapAccess {
  readonly maps = new Map<string, ConfigMapObject>();
  readonly calls: string[] = [];
  private version = 0;
  put(namespace: string, name: string, map: Omit<ConfigMapObject, "metadata">): void {
    this.maps.set(`${namespace}/${name}`, {
      ...map,
      metadata: { name, namespace, resourceVersion: String(++this.version) },
    });
  }
  async get(namespace: string, name: string) {
    this.calls.push(`get ${namespace}/${name}`);
    return this.maps.get(`${namespace}/${name}`);
  }
  async apply(map: ModuleCopy) {
    this.calls.push(`apply ${map.metadata.namespace}/${map.metadata.name}`);
    this.put(map.metadata.namespace, map.metadata.name, map);
    this.maps.get(`${map.metadata.namespace}/${map.metadata.name}`)!.metadata = {
      ...map.metadata,
      resourceVersion: String(++this.version),
    };
  }
  async list(namespace: string, label: string) {
    this.calls.push(`list ${namespace} ${label}`);
    return [...this.maps.values()].filter(
      m => m.metadata?.namespace === namespace && m.metadata.labels?.[label] !== undefined,
    );
  }
  async delete(namespace: string, name: string) {
    this.calls.push(`delete ${namespace}/${name}`);
    this.maps.delete(`${namespace}/${name}`);
  }
}
