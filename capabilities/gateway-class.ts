import { Capability } from "pepr";
import { watchKind } from "./common.ts";
import { GatewayClass } from "./kinds.ts";

export const GatewayClassCapability = new Capability({
  name: "gateway-class",
  description: "Accepts GatewayClasses naming the RAUTA controller and reports their status.",
});

watchKind(GatewayClassCapability.When, GatewayClass, "GatewayClass");
