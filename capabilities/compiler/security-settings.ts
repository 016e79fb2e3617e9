// A SecurityPolicy's spec on its own: what each section compiles to in the config, and every
// problem that makes the policy unusable. Admission and the compiler share these checks, so
// `kubectl apply` refuses exactly what status would report.
import { formatCidr, parseCidr } from "../../proxy/config/cidr.ts";
import type { ApiKeyAuth, Authorization, BasicAuth, Route } from "../../proxy/config/index.ts";
import { signInProblem } from "../../proxy/filters/sign-in.ts";
import type { Problem } from "./conditions.ts";
import { repeatedTargets } from "./policy-attachment.ts";
import type { SecurityPolicy } from "./snapshot.ts";

export type SecuritySpec = SecurityPolicy["spec"];

/** What one policy sets, section by section; each section is taken whole from one policy. */
export interface SecuritySettings {
  authorization?: Authorization;
  basicAuth?: BasicAuth;
  apiKeyAuth?: ApiKeyAuth;
  signIn?: NonNullable<Route["signIn"]>;
}
export type SecuritySection = keyof SecuritySettings;
export const SECURITY_SECTIONS: readonly SecuritySection[] = [
  "authorization",
  "basicAuth",
  "apiKeyAuth",
  "signIn",
];

/** Where the policy is: its namespace is the default of its Secret references. */
export interface PolicyPlace {
  namespace: string;
  name: string;
}

const GATEWAY_GROUP = "gateway.networking.k8s.io";

/** The compiled sections, or every problem of the spec (field paths a person can find). */
export function compileSecuritySpec(
  spec: SecuritySpec,
  place: PolicyPlace,
): SecuritySettings | Problem[] {
  const problems: string[] = [];
  const out: SecuritySettings = {};
  for (const [i, t] of (spec.targetRefs ?? []).entries())
    if (t.group !== GATEWAY_GROUP)
      problems.push(`spec.targetRefs[${i}].group: must be ${GATEWAY_GROUP}`);
  problems.push(...repeatedTargets(spec.targetRefs));

  const a = spec.authorization;
  if (a) {
    const rules = (a.rules ?? []).map((r, i) => ({
      action: r.action,
      cidrs: r.principal.clientCIDRs.flatMap(text => {
        const c = parseCidr(text);
        if (typeof c === "string") {
          problems.push(`spec.authorization.rules[${i}].principal.clientCIDRs: ${c}`);
          return [];
        }
        return [formatCidr(c)];
      }),
    }));
    // an allow list denies the rest; a deny list (or no rule) lets the rest through
    const defaultAction =
      a.defaultAction ?? (rules.some(r => r.action === "Allow") ? "Deny" : "Allow");
    if (rules.length === 0 && a.defaultAction === undefined)
      problems.push(
        "spec.authorization: give rules, or a defaultAction (Deny closes the routes to everyone)",
      );
    out.authorization = { defaultAction, rules };
  }

  const b = spec.basicAuth;
  if (b) {
    out.basicAuth = {
      secretRef: { namespace: b.users.namespace ?? place.namespace, name: b.users.name },
      realm: b.realm ?? place.name,
      ...(b.forwardUsernameHeader ? { forwardUsernameHeader: b.forwardUsernameHeader } : {}),
    };
  }

  const k = spec.apiKeyAuth;
  if (k) {
    for (const [i, e] of k.extractFrom.entries())
      if ((e.headers ?? []).length + (e.params ?? []).length + (e.cookies ?? []).length === 0)
        problems.push(
          `spec.apiKeyAuth.extractFrom[${i}]: name a header, a query parameter or a cookie the key is in`,
        );
    if (
      k.forwardClientIDHeader &&
      k.extractFrom.some(e =>
        (e.headers ?? []).some(h => h.toLowerCase() === k.forwardClientIDHeader!.toLowerCase()),
      )
    )
      problems.push(
        `spec.apiKeyAuth.forwardClientIDHeader: ${k.forwardClientIDHeader} is where the key is looked for too; the client id would replace it`,
      );
    out.apiKeyAuth = {
      secretRefs: k.credentialRefs.map(r => ({
        namespace: r.namespace ?? place.namespace,
        name: r.name,
      })),
      extractFrom: k.extractFrom.map(e => ({
        headers: e.headers ?? [],
        params: e.params ?? [],
        cookies: e.cookies ?? [],
      })),
      ...(k.forwardClientIDHeader ? { forwardClientIdHeader: k.forwardClientIDHeader } : {}),
      sanitize: k.sanitize ?? false,
    };
  }

  if (spec.signIn) {
    const problem = signInProblem(spec.signIn.url);
    if (problem !== null) problems.push(`spec.signIn.url: ${problem}`);
    out.signIn = { url: spec.signIn.url };
  }

  if (SECURITY_SECTIONS.every(s => out[s] === undefined))
    problems.push("spec sets nothing: give authorization, basicAuth, apiKeyAuth or signIn");
  if (problems.length > 0) return problems.map(message => ({ reason: "Invalid", message }));
  return out;
}
