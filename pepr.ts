import { PeprModule } from "pepr";
// cfg carries the module's pepr settings (uuid, onError, webhook timeout) from package.json.
import cfg from "./package.json" with { type: "json" };
import { BackendTLSPolicyCapability } from "./capabilities/backend-tls-policy.ts";
import { BackendTrafficPolicyCapability } from "./capabilities/backend-traffic-policy.ts";
import { ClientTrafficPolicyCapability } from "./capabilities/client-traffic-policy.ts";
import { BackendsCapability } from "./capabilities/backends.ts";
import { GatewayCapability } from "./capabilities/gateway.ts";
import { GatewayClassCapability } from "./capabilities/gateway-class.ts";
import { GRPCRouteCapability } from "./capabilities/grpc-route.ts";
import { HTTPRouteCapability } from "./capabilities/http-route.ts";
import { ListenerSetCapability } from "./capabilities/listener-set.ts";
import { RautaPluginCapability } from "./capabilities/rauta-plugin.ts";
import { ReferenceGrantCapability } from "./capabilities/reference-grant.ts";
import { SecurityPolicyCapability } from "./capabilities/security-policy.ts";
import { TLSRouteCapability } from "./capabilities/tls-route.ts";

new PeprModule(cfg, [
  GatewayClassCapability,
  GatewayCapability,
  HTTPRouteCapability,
  GRPCRouteCapability,
  TLSRouteCapability,
  ReferenceGrantCapability,
  RautaPluginCapability,
  BackendsCapability,
  BackendTLSPolicyCapability,
  BackendTrafficPolicyCapability,
  ClientTrafficPolicyCapability,
  SecurityPolicyCapability,
  ListenerSetCapability,
]);
