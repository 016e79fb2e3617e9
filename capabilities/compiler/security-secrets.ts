// The Secrets a SecurityPolicy's basicAuth and apiKeyAuth name: each must exist, be permitted (a
// ReferenceGrant in its namespace when it is not the policy's) and hold what the section needs.
// A section whose Secret cannot serve stays attached, marked unusable, so its routes answer 500
// until it is fixed: a broken policy closes what it guards, never opens it (as Envoy Gateway
// does); its status says what is wrong.
import type { ObjectRef } from "../../proxy/config/index.ts";
import { referenceAllowed } from "./references.ts";
import type { SecuritySettings } from "./security-settings.ts";
import type { ReferenceGrant, SecretMeta } from "./snapshot.ts";

export interface SecretLookup {
  secrets: ReadonlyMap<string, SecretMeta>;
  grants: readonly ReferenceGrant[];
}

const name = (ref: ObjectRef) => `${ref.namespace}/${ref.name}`;

/** Why the policy in `namespace` cannot use `ref` at all, or null. */
function unreachable(ref: ObjectRef, namespace: string, lookup: SecretLookup): string | null {
  const permitted = referenceAllowed(
    { group: "rauta.io", kind: "SecurityPolicy", namespace },
    { group: "", kind: "Secret", namespace: ref.namespace, name: ref.name },
    lookup.grants,
  );
  if (!permitted)
    return `Secret ${name(ref)}: not permitted (a ReferenceGrant in ${ref.namespace} from rauta.io SecurityPolicy in ${namespace} to Secrets is missing)`;
  if (!lookup.secrets.has(name(ref))) return `Secret ${name(ref)} not found`;
  return null;
}

function usersProblem(ref: ObjectRef, namespace: string, lookup: SecretLookup): string | null {
  const gone = unreachable(ref, namespace, lookup);
  if (gone !== null) return gone;
  const meta = lookup.secrets.get(name(ref))!;
  if (!meta.keys.includes(".htpasswd")) return `Secret ${name(ref)} has no .htpasswd key`;
  if (meta.htpasswdProblem !== undefined)
    return `Secret ${name(ref)} .htpasswd: ${meta.htpasswdProblem}`;
  return null;
}

function keysProblem(ref: ObjectRef, namespace: string, lookup: SecretLookup): string | null {
  const gone = unreachable(ref, namespace, lookup);
  if (gone !== null) return gone;
  const meta = lookup.secrets.get(name(ref))!;
  const usable = meta.keys.filter(k => !(meta.emptyKeys ?? []).includes(k));
  if (usable.length === 0) return `Secret ${name(ref)} holds no API key (client id → key)`;
  return null;
}

/** `settings` with the sections whose Secrets cannot serve marked unusable (why). */
export function checkSecuritySecrets(
  settings: SecuritySettings,
  namespace: string,
  lookup: SecretLookup,
): SecuritySettings {
  const out = { ...settings };
  if (out.basicAuth) {
    const problem = usersProblem(out.basicAuth.secretRef, namespace, lookup);
    if (problem !== null) out.basicAuth = { ...out.basicAuth, unusable: problem };
  }
  if (out.apiKeyAuth) {
    const problems = out.apiKeyAuth.secretRefs.flatMap(ref => {
      const p = keysProblem(ref, namespace, lookup);
      return p === null ? [] : [p];
    });
    if (problems.length > 0) out.apiKeyAuth = { ...out.apiKeyAuth, unusable: problems.join("; ") };
  }
  return out;
}

/** The unusable sections' reasons, for the policy's status. */
export function unusableSections(settings: SecuritySettings): string[] {
  const out: string[] = [];
  if (settings.basicAuth?.unusable) out.push(`basicAuth: ${settings.basicAuth.unusable}`);
  if (settings.apiKeyAuth?.unusable) out.push(`apiKeyAuth: ${settings.apiKeyAuth.unusable}`);
  return out;
}
