// What the compiler knows of a ConfigMap used as a CA bundle (BackendTLSPolicy
// caCertificateRefs): the PEM certificates under `ca.crt`, each parsed with node:crypto so the
// compiler can tell a policy its reference is unusable (ResolvedRefs False,
// InvalidCACertificateRef) instead of the proxy failing every handshake. One reducer for the
// controller's store and for `rauta compile`/`serve`.
import { X509Certificate } from "node:crypto";
import type { CaBundle } from "../compiler/snapshot.ts";

export const CA_BUNDLE_KEY = "ca.crt";

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, re-encoded, or why it holds none the proxy could use. */
export function parseCaBundle(pem: string): { certificates: string } | { problem: string } {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return { problem: `${CA_BUNDLE_KEY} holds no PEM certificate` };
  const out: string[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      out.push(new X509Certificate(block).toString());
    } catch {
      return {
        problem: `${CA_BUNDLE_KEY}: certificate ${index + 1} is not a valid X.509 certificate`,
      };
    }
  }
  return { certificates: out.join("") };
}

interface ConfigMapObject {
  metadata?: Record<string, unknown>;
  data?: unknown;
}

/** A ConfigMap with a `ca.crt` key as a CaBundle; undefined for any other ConfigMap. */
export function caBundle(object: ConfigMapObject): CaBundle | undefined {
  const data = (object.data ?? {}) as Record<string, unknown>;
  if (!(CA_BUNDLE_KEY in data)) return undefined;
  const value = data[CA_BUNDLE_KEY];
  const parsed = parseCaBundle(typeof value === "string" ? value : "");
  const meta = (object.metadata ?? {}) as Record<string, unknown>;
  const metadata = Object.fromEntries(
    ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"]
      .filter(k => meta[k] !== undefined)
      .map(k => [k, meta[k]]),
  ) as unknown as CaBundle["metadata"];
  return { metadata, ...parsed };
}
