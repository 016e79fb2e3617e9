// Gateway spec.tls.frontend: client-certificate validation of an HTTPS listener, from the entry
// for its port (perPort) or the default. The CA bundles come from ConfigMaps (`ca.crt`), parsed
// on the way into the snapshot (capabilities/controller/ca-bundle.ts).
import { resolveCaCertificateRefs } from "./ca-refs.ts";
import type { Problem } from "./conditions.ts";
import { GATEWAY_GROUP } from "./references.ts";
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

/**
 * Every caCertificateRefs entry of a Gateway's frontend, default and perPort. The controller's
 * store asks this of every Gateway on each ConfigMap event, before any compile: hence the
 * optional chaining even where the type promises a field, so a partial object cannot throw.
 */
export function frontendCaRefs(gateway: Gateway): Validation["caCertificateRefs"] {
  const frontend = gateway.spec?.tls?.frontend;
  return [
    ...(frontend?.default?.validation?.caCertificateRefs ?? []),
    ...(frontend?.perPort ?? []).flatMap(p => p.tls?.validation?.caCertificateRefs ?? []),
  ];
}

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
  const { certificates, unresolved } = resolveCaCertificateRefs(validation.caCertificateRefs, {
    namespace: gateway.metadata.namespace ?? "default",
    field: `${base}.caCertificateRefs`,
    bundles,
    kindReason: "InvalidCACertificateKind",
    grantsFrom: { group: GATEWAY_GROUP, kind: "Gateway", grants },
  });
  const result: FrontendValidationResult = unresolved ? { unresolved } : {};
  if (certificates === undefined)
    result.unaccepted = {
      reason: "NoValidCACertificate",
      message: `${base}: no usable CA certificate (${result.unresolved?.message ?? "none listed"})`,
    };
  else
    result.validation = {
      caCertificates: certificates,
      mode: validation.mode ?? "AllowValidOnly",
    };
  return result;
}
