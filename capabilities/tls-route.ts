import { Capability } from "pepr";
import { watchKind } from "./common.ts";
import { TLSRoute } from "./kinds.ts";

// No admission check: a TLSRoute has hostnames and backendRefs only, which the CRD's schema
// validates; what depends on other objects (listeners, Services, grants) is reported in status.
export const TLSRouteCapability = new Capability({
  name: "tls-route",
  description:
    "Tracks TLSRoutes: TLS connections routed by SNI, passed through to the backend or terminated at a RAUTA Gateway.",
});

watchKind(TLSRouteCapability.When, TLSRoute, "TLSRoute");
