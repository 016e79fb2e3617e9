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
