import { Capability } from "pepr";
import { validateClientTrafficPolicy } from "./admission/client-traffic-policy.ts";
import { watchKind } from "./common.ts";
import type { ClientTrafficPolicy as ClientTrafficPolicyObject } from "./compiler/index.ts";
import { ClientTrafficPolicy } from "./kinds.ts";

export const ClientTrafficPolicyCapability = new Capability({
  name: "client-traffic-policy",
  description:
    "Validates ClientTrafficPolicies (client address behind proxies, timeouts, limits, HTTP/2, path normalization) and tracks them for the compiler.",
});

watchKind(ClientTrafficPolicyCapability.When, ClientTrafficPolicy, "ClientTrafficPolicy", policy =>
  validateClientTrafficPolicy(policy as unknown as ClientTrafficPolicyObject),
);
