import { Capability } from "pepr";
import { validateRautaPlugin } from "./admission/rauta-plugin.ts";
import { watchKind } from "./common.ts";
import type { RautaPlugin as RautaPluginObject } from "./compiler/index.ts";
import { RautaPlugin } from "./kinds.ts";

export const RautaPluginCapability = new Capability({
  name: "rauta-plugin",
  description: "Validates RautaPlugin configuration and delivers plugins to the proxy.",
});

watchKind(RautaPluginCapability.When, RautaPlugin, "RautaPlugin", plugin =>
  validateRautaPlugin(plugin as unknown as RautaPluginObject),
);
