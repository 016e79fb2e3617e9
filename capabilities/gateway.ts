import { Capability } from "pepr";
import { validateGateway } from "./admission/gateway.ts";
import { watchKind } from "./common.ts";
import type { Gateway as GatewayObject } from "./compiler/index.ts";
import { Gateway } from "./kinds.ts";
import { classIsOurs } from "./ownership.ts";

export const GatewayCapability = new Capability({
  name: "gateway",
  description: "Validates Gateways of RAUTA classes and programs their listeners.",
});

watchKind(GatewayCapability.When, Gateway, "Gateway", async gateway => {
  const object = gateway as unknown as GatewayObject;
  return (await classIsOurs(object.spec?.gatewayClassName)) ? validateGateway(object) : [];
});
