// Gateway spec.tls.frontend: client-certificate validation of an HTTPS listener, from the entry
// for its port (perPort) or the default. The CA bundles come from ConfigMaps (`ca.crt`), parsed
// on the way into the snapshot (capabilities/controller/ca-bundle.ts).
import type { Problem } from "./conditions.ts";
import { GATEWAY_GROUP, referenceAllowed } from "./references.ts";
import type { CaBundle, Gateway, ReferenceGrant } from "./snapshot.ts";

export interface ClientValidation {
  caCertificates: string;
  mode: "AllowValidOnly" | "AllowInsecureFallback";
}

export interface FrontendValidationResult {
  validation?: ClientValidation;
  /** every CA reference unusable: the listener is not accepted (NoValidCACertificate) */
  unaccepted?: Problem;
  /** some CA reference unusable: ResolvedRefs False */
  unresolved?: Problem;
}

type FrontendTls = NonNullable<NonNullable<Gateway["spec"]["tls"]>["frontend"]>;
type Validation = NonNullable<FrontendTls["default"]["validation"]>;

export function frontendValidation(
  gateway: Gateway,
  port: number,
  grants: readonly ReferenceGrant[],
  bundles: ReadonlyMap<string, CaBundle>,
): FrontendValidationResult | undefined {
  const frontend = gateway.spec.tls?.frontend;
  if (!frontend) return undefined;
  const index = (frontend.perPort ?? []).findIndex(p => p.port === port);
  const validation: Validation | undefined =
    index >= 0 ? frontend.perPort![index]!.tls.validation : frontend.default.validation;
  if (!validation) return undefined;
  const base =
    index >= 0
      ? `spec.tls.frontend.perPort[${index}].tls.validation`
      : "spec.tls.frontend.default.validation";
  const namespace = gateway.metadata.namespace ?? "default";
  const problems: Problem[] = [];
  const pems: string[] = [];
  validation.caCertificateRefs.forEach((ref, i) => {
    const field = `${base}.caCertificateRefs[${i}]`;
    const target = ref.namespace ?? namespace;
    if ((ref.group ?? "") !== "" || ref.kind !== "ConfigMap") {
      problems.push({
        reason: "InvalidCACertificateKind",
        message: `${field}: ${ref.group || "core"}/${ref.kind} is not supported; reference a ConfigMap with a ca.crt key`,
      });
      return;
    }
    const allowed = referenceAllowed(
      { group: GATEWAY_GROUP, kind: "Gateway", namespace },
      { group: "", kind: "ConfigMap", namespace: target, name: ref.name },
      grants,
    );
    if (!allowed) {
      problems.push({
        reason: "RefNotPermitted",
        message: `${field}: ConfigMap ${target}/${ref.name} is in another namespace and no ReferenceGrant in ${target} allows Gateways from ${namespace} to use it`,
      });
      return;
    }
    const bundle = bundles.get(`${target}/${ref.name}`);
    if (!bundle?.certificates) {
      problems.push({
        reason: "InvalidCACertificateRef",
        message: `${field}: ConfigMap ${target}/${ref.name} ${bundle?.problem ?? "does not exist or has no ca.crt key"}`,
      });
      return;
    }
    pems.push(bundle.certificates);
  });
  const result: FrontendValidationResult = {};
  if (problems.length > 0)
    result.unresolved = {
      reason: problems[0]!.reason,
      message: problems.map(p => p.message).join("; "),
    };
  if (pems.length === 0)
    result.unaccepted = {
      reason: "NoValidCACertificate",
      message: `${base}: no usable CA certificate (${result.unresolved?.message ?? "none listed"})`,
    };
  else
    result.validation = {
      caCertificates: pems.join(""),
      mode: validation.mode ?? "AllowValidOnly",
    };
  return result;
}
