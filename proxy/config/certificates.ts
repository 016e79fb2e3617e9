// How TLS material reaches the proxy without entering a ConfigMap: the controller copies each
// Secret the config references into a Secret in the proxy's own namespace (so the proxy's RBAC
// can stay "read Secrets in my namespace"), labelled CERTIFICATE_LABEL and annotated with the
// Secret it copies; the proxy watches those and resolves config secretRefs through them.
import { createHash } from "node:crypto";
import type { ObjectRef } from "./schema.ts";

export const CERTIFICATE_LABEL = "rauta.io/certificate";
export const CERTIFICATE_SOURCE_ANNOTATION = "rauta.io/source";

export function certificateCopyName(ref: ObjectRef): string {
  return `rauta-cert-${createHash("sha256").update(`${ref.namespace}/${ref.name}`).digest("hex").slice(0, 20)}`;
}

/**
 * Every Secret a config references, once each: listener certificates and the client
 * certificates presented to TLS backends. The controller copies exactly these; the proxy hands
 * exactly these to its workers.
 */
export function referencedSecrets(config: {
  listeners: ReadonlyArray<{ tls?: { certificates: ReadonlyArray<{ secretRef: ObjectRef }> } }>;
  clusters: ReadonlyArray<{ tls?: { clientCertificate?: ObjectRef } }>;
}): ObjectRef[] {
  const refs = new Map<string, ObjectRef>();
  const add = (ref: ObjectRef) => refs.set(`${ref.namespace}/${ref.name}`, ref);
  for (const l of config.listeners) for (const c of l.tls?.certificates ?? []) add(c.secretRef);
  for (const c of config.clusters) if (c.tls?.clientCertificate) add(c.tls.clientCertificate);
  return [...refs.values()];
}
