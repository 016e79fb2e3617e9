// How TLS material and credentials reach the proxy without entering a ConfigMap: the controller
// copies each Secret the config references into a Secret in the proxy's own namespace (so the
// proxy's RBAC can stay "read Secrets in my namespace"), labelled CERTIFICATE_LABEL and annotated
// with the Secret it copies; the proxy watches those and resolves config secretRefs through them.
import { createHash } from "node:crypto";
import type { ObjectRef } from "./schema.ts";

export const CERTIFICATE_LABEL = "rauta.io/certificate";
export const CERTIFICATE_SOURCE_ANNOTATION = "rauta.io/source";

export function certificateCopyName(ref: ObjectRef): string {
  return `rauta-cert-${createHash("sha256").update(`${ref.namespace}/${ref.name}`).digest("hex").slice(0, 20)}`;
}

interface CertificateUses {
  listeners: ReadonlyArray<{ tls?: { certificates: ReadonlyArray<{ secretRef: ObjectRef }> } }>;
  clusters: ReadonlyArray<{ tls?: { clientCertificate?: ObjectRef } }>;
}
interface CredentialUses {
  routes: ReadonlyArray<{
    basicAuth?: { secretRef: ObjectRef; unusable?: string };
    apiKeyAuth?: { secretRefs: readonly ObjectRef[]; unusable?: string };
  }>;
}

function unique(add: (into: (ref: ObjectRef) => void) => void): ObjectRef[] {
  const refs = new Map<string, ObjectRef>();
  add(ref => refs.set(`${ref.namespace}/${ref.name}`, ref));
  return [...refs.values()];
}

/** Listener certificates and the client certificates presented to TLS backends, once each. */
export function referencedCertificates(config: CertificateUses): ObjectRef[] {
  return unique(add => {
    for (const l of config.listeners) for (const c of l.tls?.certificates ?? []) add(c.secretRef);
    for (const c of config.clusters) if (c.tls?.clientCertificate) add(c.tls.clientCertificate);
  });
}

/** The basic-auth and API-key Secrets of the config's routes, once each (not unusable ones). */
export function referencedCredentials(config: CredentialUses): ObjectRef[] {
  return unique(add => {
    for (const r of config.routes) {
      if (r.basicAuth && r.basicAuth.unusable === undefined) add(r.basicAuth.secretRef);
      if (r.apiKeyAuth?.unusable === undefined)
        for (const ref of r.apiKeyAuth?.secretRefs ?? []) add(ref);
    }
  });
}

/**
 * Every Secret a config references, once each: certificates and credentials. The controller
 * copies exactly these; the proxy hands exactly these to its workers.
 */
export function referencedSecrets(config: CertificateUses & CredentialUses): ObjectRef[] {
  return unique(add => {
    for (const ref of referencedCertificates(config)) add(ref);
    for (const ref of referencedCredentials(config)) add(ref);
  });
}
