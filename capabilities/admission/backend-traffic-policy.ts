// Admission for BackendTrafficPolicies: a spec that can never apply (a duration that is not one,
// a consistentHash without its key, rateLimit on a Service target, a health check timeout longer
// than its interval). The checks are the compiler's own (compiler/traffic-settings.ts), so
// admission and status always agree; what depends on other objects (a target that does not
// exist yet, an older policy on the same target) is reported in status, never denied.
import type { BackendTrafficPolicy } from "../compiler/snapshot.ts";
import { compileTrafficSpec } from "../compiler/traffic-settings.ts";

export function validateBackendTrafficPolicy(policy: BackendTrafficPolicy): string[] {
  const id = `BackendTrafficPolicy ${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
  const compiled = compileTrafficSpec(policy.spec ?? { targetRefs: [] });
  return Array.isArray(compiled) ? compiled.map(p => `${id}: ${p.message}`) : [];
}
