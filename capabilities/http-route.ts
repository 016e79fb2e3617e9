import { Capability } from "pepr";
import { validateHTTPRoute } from "./admission/http-route.ts";
import { watchKind } from "./common.ts";
import type { HTTPRoute as HTTPRouteObject } from "./compiler/index.ts";
import { HTTPRoute } from "./kinds.ts";
import { routeIsOurs } from "./ownership.ts";

export const HTTPRouteCapability = new Capability({
  name: "http-route",
  description:
    "Validates HTTPRoutes attached to RAUTA Gateways and compiles them into the proxy config.",
});

watchKind(HTTPRouteCapability.When, HTTPRoute, "HTTPRoute", async route => {
  const object = route as unknown as HTTPRouteObject;
  return (await routeIsOurs(object)) ? validateHTTPRoute(object) : [];
});
