// Admission for SecurityPolicies: a spec that can never apply (a range that is not one, an
// authorization with nothing to decide, an API key looked for nowhere, a policy that sets
// nothing), by the compiler's own checks (compiler/security-settings.ts). What depends on other
// objects (a missing route or Secret, an older policy on the same target) is reported in
// status, never denied.
import { compileSecuritySpec } from "../compiler/security-settings.ts";
import type { SecurityPolicy } from "../compiler/snapshot.ts";

export function validateSecurityPolicy(policy: SecurityPolicy): string[] {
  const id = `SecurityPolicy ${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
  const compiled = compileSecuritySpec(policy.spec ?? { targetRefs: [] }, {
    namespace: policy.metadata.namespace ?? "default",
    name: policy.metadata.name,
  });
  return Array.isArray(compiled) ? compiled.map(p => `${id}: ${p.message}`) : [];
}
