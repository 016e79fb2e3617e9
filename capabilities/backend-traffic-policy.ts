import { Capability } from "pepr";
import { validateBackendTrafficPolicy } from "./admission/backend-traffic-policy.ts";
import { watchKind } from "./common.ts";
import type { BackendTrafficPolicy as BackendTrafficPolicyObject } from "./compiler/index.ts";
import { BackendTrafficPolicy } from "./kinds.ts";

export const BackendTrafficPolicyCapability = new Capability({
  name: "backend-traffic-policy",
  description:
    "Validates BackendTrafficPolicies (rate limits, load balancing, circuit breaking, health checks) and tracks them for the compiler.",
});

watchKind(
  BackendTrafficPolicyCapability.When,
  BackendTrafficPolicy,
  "BackendTrafficPolicy",
  policy => validateBackendTrafficPolicy(policy as unknown as BackendTrafficPolicyObject),
);
