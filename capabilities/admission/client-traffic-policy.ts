// Admission for ClientTrafficPolicies: a spec that can never apply (a duration that is not one,
// a request-headers timeout longer than the whole request's, a policy that sets nothing), by
// the compiler's own checks (compiler/client-policies.ts). What depends on other objects
// (listeners sharing a port with other settings, a missing Gateway) is reported in status.
import { compileClientSpec } from "../compiler/client-policies.ts";
import type { ClientTrafficPolicy } from "../compiler/snapshot.ts";

export function validateClientTrafficPolicy(policy: ClientTrafficPolicy): string[] {
  const id = `ClientTrafficPolicy ${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
  const compiled = compileClientSpec(policy.spec ?? { targetRefs: [] });
  return Array.isArray(compiled) ? compiled.map(p => `${id}: ${p.message}`) : [];
}
