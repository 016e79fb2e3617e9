import { Capability } from "pepr";
import { watchKind } from "./common.ts";
import { BackendTLSPolicy } from "./kinds.ts";

// No admission check: the CRD's CEL rules cover what the API makes invalid, and what RAUTA
// cannot use (a missing CA ConfigMap, a malformed bundle) is reported in the policy's status.
export const BackendTLSPolicyCapability = new Capability({
  name: "backend-tls-policy",
  description:
    "Tracks BackendTLSPolicies: TLS from the gateway to the Services they target, verified against their CA ConfigMaps.",
});

watchKind(BackendTLSPolicyCapability.When, BackendTLSPolicy, "BackendTLSPolicy");
