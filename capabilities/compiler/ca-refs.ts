// caCertificateRefs, as BackendTLSPolicy spec.validation and Gateway spec.tls.frontend name
// them: ConfigMaps with a `ca.crt` key, parsed on the way into the snapshot
// (capabilities/controller/ca-bundle.ts). The two APIs differ only in the reason they give a
// reference to another kind and in whether a reference may cross namespaces.
import type { Problem } from "./conditions.ts";
import { combineProblems } from "./conditions.ts";
import { referenceAllowed } from "./references.ts";
import type { CaBundle, ReferenceGrant } from "./snapshot.ts";

/** CA bundles by "<namespace>/<name>" of their ConfigMap. */
export function bundlesByKey(caBundles: readonly CaBundle[]): Map<string, CaBundle> {
  return new Map(
    caBundles.map(b => [`${b.metadata.namespace ?? "default"}/${b.metadata.name}`, b]),
  );
}

export interface CaRef {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface CaRefOptions {
  /** the referring object's namespace */
  namespace: string;
  /** where the refs sit in the referring object, for messages */
  field: string;
  bundles: ReadonlyMap<string, CaBundle>;
  /** the reason for a reference to anything but a ConfigMap */
  kindReason: string;
  /**
   * The referring kind, where the API lets a reference name another namespace (a ReferenceGrant
   * there must allow it); without it every reference resolves in `namespace`.
   */
  grantsFrom?: { group: string; kind: string; grants: readonly ReferenceGrant[] };
}

export interface ResolvedCaRefs {
  /** the PEM of every usable reference; absent when none is */
  certificates?: string;
  /** the unusable references, for ResolvedRefs False */
  unresolved?: Problem;
}

export function resolveCaCertificateRefs(
  refs: readonly CaRef[],
  { namespace, field, bundles, kindReason, grantsFrom }: CaRefOptions,
): ResolvedCaRefs {
  const problems: Problem[] = [];
  const pems: string[] = [];
  refs.forEach((ref, index) => {
    const at = `${field}[${index}]`;
    if ((ref.group ?? "") !== "" || ref.kind !== "ConfigMap") {
      problems.push({
        reason: kindReason,
        message: `${at}: ${ref.group || "core"}/${ref.kind} is not supported; reference a ConfigMap with a ca.crt key`,
      });
      return;
    }
    const target = grantsFrom ? (ref.namespace ?? namespace) : namespace;
    const key = `${target}/${ref.name}`;
    if (
      grantsFrom &&
      !referenceAllowed(
        { group: grantsFrom.group, kind: grantsFrom.kind, namespace },
        { group: "", kind: "ConfigMap", namespace: target, name: ref.name },
        grantsFrom.grants,
      )
    ) {
      problems.push({
        reason: "RefNotPermitted",
        message: `${at}: ConfigMap ${key} is in another namespace and no ReferenceGrant in ${target} allows ${grantsFrom.kind}s from ${namespace} to use it`,
      });
      return;
    }
    const bundle = bundles.get(key);
    if (!bundle?.certificates) {
      problems.push({
        reason: "InvalidCACertificateRef",
        message: bundle?.problem
          ? `${at}: ConfigMap ${key}: ${bundle.problem}`
          : `${at}: ConfigMap ${key} does not exist or has no ca.crt key`,
      });
      return;
    }
    pems.push(bundle.certificates);
  });
  const unresolved = combineProblems(problems);
  return {
    ...(pems.length > 0 ? { certificates: pems.join("") } : {}),
    ...(unresolved ? { unresolved } : {}),
  };
}
