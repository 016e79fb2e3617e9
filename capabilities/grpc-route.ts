import { Capability } from "pepr";
import { validateGRPCRoute } from "./admission/grpc-route.ts";
import { watchKind } from "./common.ts";
import type { GRPCRoute as GRPCRouteObject } from "./compiler/index.ts";
import { GRPCRoute } from "./kinds.ts";
import { routeIsOurs } from "./ownership.ts";

export const GRPCRouteCapability = new Capability({
  name: "grpc-route",
  description:
    "Validates GRPCRoutes attached to RAUTA Gateways and compiles them into the proxy config.",
});

watchKind(GRPCRouteCapability.When, GRPCRoute, "GRPCRoute", async route => {
  const object = route as unknown as GRPCRouteObject;
  return (await routeIsOurs(object)) ? validateGRPCRoute(object) : [];
});
