// The in-cluster proxy's reader of configMap plugin sources (ModuleStoreOptions.readConfigMap).
// The controller copies every module into a ConfigMap of the proxy's own namespace and points
// the config there, so this reads that namespace only: the proxy's RBAC stays "read ConfigMaps
// in my namespace", and a config naming another namespace is refused rather than attempted.
import { K8s, kind } from "kubernetes-fluent-client";
import { ModuleError } from "../plugins/modules.ts";

export interface ModuleConfigMap {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** undefined when the ConfigMap does not exist */
export type GetConfigMap = (
  namespace: string,
  name: string,
) => Promise<ModuleConfigMap | undefined>;

async function getFromApi(namespace: string, name: string): Promise<ModuleConfigMap | undefined> {
  try {
    return await K8s(kind.ConfigMap).InNamespace(namespace).Get(name);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}

export function configMapModuleReader(
  namespace: string,
  get: GetConfigMap = getFromApi,
): (namespace: string, name: string, key: string) => Promise<Uint8Array | null> {
  return async (from, name, key) => {
    if (from !== namespace)
      throw new ModuleError(
        "SourceNotFound",
        `ConfigMap ${from}/${name}: this proxy reads plugin modules only from its own namespace ${namespace}, where the controller copies them`,
      );
    const map = await get(from, name);
    if (map === undefined)
      throw new ModuleError("SourceNotFound", `ConfigMap ${from}/${name} does not exist`);
    // binaryData holds bytes; data can only hold the module as base64 text
    const encoded = map.binaryData?.[key] ?? map.data?.[key]?.replace(/\s+/g, "");
    return encoded === undefined ? null : new Uint8Array(Buffer.from(encoded, "base64"));
  };
}
