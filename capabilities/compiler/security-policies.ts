// SecurityPolicies attached the Gateway API way (GEP-713): which policy governs each route rule
// as a listener serves it, and the policies' status. The same precedence as BackendTrafficPolicy
// (policy-attachment.ts): the rule, the route, the Gateway listener, the Gateway; the oldest
// policy holds a target.
import type { MakeCondition } from "./conditions.ts";
import type { ListenerModel } from "./gateways.ts";
import { compareStrings } from "./order.ts";
import { PolicyAttachment, layersFor } from "./policy-attachment.ts";
import type { AttachedModel, RuleTarget } from "./policy-attachment.ts";
import { checkSecuritySecrets, unusableSections } from "./security-secrets.ts";
import type { SecretLookup } from "./security-secrets.ts";
import { SECURITY_SECTIONS, compileSecuritySpec } from "./security-settings.ts";
import type { SecuritySection, SecuritySettings } from "./security-settings.ts";
import type { SecurityPolicy } from "./snapshot.ts";
import { targetIndex } from "./traffic-policies.ts";
import type { TrafficTargets } from "./traffic-policies.ts";
import type { Condition, SecurityPolicyStatus } from "./types.ts";

type Model = AttachedModel<SecurityPolicy, SecuritySettings>;

/** What governs one route rule on one listener: each section from the policy that won it. */
export interface EffectiveSecurity {
  settings: SecuritySettings;
  /** policy keys that won a section, sorted and joined with "+" */
  key: string;
}

export class SecurityPolicies {
  private readonly attachment: PolicyAttachment<SecurityPolicy, SecuritySettings>;

  constructor(
    policies: readonly SecurityPolicy[],
    targets: Omit<TrafficTargets, "services">,
    lookup: SecretLookup,
  ) {
    this.attachment = new PolicyAttachment(
      "SecurityPolicy",
      policies,
      p => {
        const namespace = p.metadata.namespace ?? "default";
        const settings = compileSecuritySpec(p.spec, { namespace, name: p.metadata.name });
        return Array.isArray(settings)
          ? settings
          : checkSecuritySecrets(settings, namespace, lookup);
      },
      targetIndex({ ...targets, services: [] }),
    );
  }

  /** What governs a rule of a route as `listener` serves it (null: no policy reaches it). */
  effective(route: RuleTarget | null, listener: ListenerModel): EffectiveSecurity | null {
    const layers = layersFor(this.attachment, route, listener);
    if (layers.length === 0) return null;
    const settings: SecuritySettings = {};
    const won = new Set<string>();
    for (const section of SECURITY_SECTIONS) {
      const m = layers.find(l => l.settings![section] !== undefined);
      if (!m) continue;
      (settings as Record<SecuritySection, unknown>)[section] = m.settings![section];
      won.add(m.key);
    }
    return { settings, key: [...won].sort(compareStrings).join("+") };
  }

  statuses(controllerName: string, now: string): SecurityPolicyStatus[] {
    return this.attachment.statuses(controllerName, now, accepted) as SecurityPolicyStatus[];
  }
}

function accepted(model: Model, condition: MakeCondition): Condition {
  const unusable = unusableSections(model.settings!);
  if (unusable.length > 0)
    return condition(
      "Accepted",
      false,
      "Invalid",
      `${unusable.join("; ")}; the routes it targets answer 500 until this is fixed`,
    );
  const sections = SECURITY_SECTIONS.filter(s => model.settings![s] !== undefined).join(", ");
  return condition("Accepted", true, "Accepted", `policy applies: ${sections}`);
}
