import { Capability } from "pepr";
import { validateSecurityPolicy } from "./admission/security-policy.ts";
import { watchKind } from "./common.ts";
import type { SecurityPolicy as SecurityPolicyObject } from "./compiler/index.ts";
import { SecurityPolicy } from "./kinds.ts";

export const SecurityPolicyCapability = new Capability({
  name: "security-policy",
  description:
    "Validates SecurityPolicies (IP allow and deny lists, basic auth, API keys, sign-in) and tracks them for the compiler.",
});

watchKind(SecurityPolicyCapability.When, SecurityPolicy, "SecurityPolicy", policy =>
  validateSecurityPolicy(policy as unknown as SecurityPolicyObject),
);
