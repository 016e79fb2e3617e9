import { Capability, a } from "pepr";
import { admitRautaPlugin } from "./admission/rauta-plugin.ts";
import { watchKind } from "./common.ts";
import type { RautaPlugin as RautaPluginObject } from "./compiler/index.ts";
import { RautaPlugin } from "./kinds.ts";

export const RautaPluginCapability = new Capability({
  name: "rauta-plugin",
  description: "Validates RautaPlugin configuration and delivers plugins to the proxy.",
});

watchKind(RautaPluginCapability.When, RautaPlugin, "RautaPlugin", plugin =>
  admitRautaPlugin(plugin as unknown as RautaPluginObject),
);
// The ConfigMaps configMap sources name: a changed module is copied again (the store keeps only
// their names and resourceVersions, and counts a change only for ones a RautaPlugin names).
// The same watch feeds BackendTLSPolicy CA bundles (snapshot-store.ts keeps their parsed ca.crt).
watchKind(RautaPluginCapability.When, a.ConfigMap, "ConfigMap");
