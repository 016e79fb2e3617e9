// What the compiler knows of a Secret: its metadata, type and key names, for a
// kubernetes.io/tls Secret whether tls.crt and tls.key are a usable certificate and key (the
// conformance suite's GatewayInvalidTLSConfiguration: a malformed one is ResolvedRefs False,
// InvalidCertificateRef), and for credentials whether a .htpasswd can be checked against and
// which keys are empty. The data itself never reaches the compiler or the compiled config.
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { SecretMeta } from "../compiler/snapshot.ts";
import { htpasswdProblem } from "../../proxy/filters/htpasswd.ts";
import { decodeSecretData } from "../../proxy/tls/secrets.ts";

interface SecretObject {
  metadata?: Record<string, unknown>;
  type?: unknown;
  data?: unknown;
  stringData?: unknown;
}

/** Why tls.crt/tls.key cannot serve TLS, or null when they can. */
export function tlsProblem(crt: string, key: string): string | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(crt);
  } catch {
    // OpenSSL's reason text differs between versions; the status says what is wrong
    return "tls.crt is not a PEM certificate";
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return "tls.key is not a PEM private key";
  }
  if (!cert.checkPrivateKey(privateKey))
    return "tls.key does not belong to the certificate in tls.crt";
  return null;
}

export function secretMeta(object: SecretObject): SecretMeta {
  const data = (object.data as Record<string, unknown>) ?? {};
  const stringData = (object.stringData as Record<string, unknown>) ?? {};
  const keys = Object.keys({ ...data, ...stringData }).sort();
  const meta: SecretMeta = {
    metadata: (object.metadata ?? {}) as unknown as SecretMeta["metadata"],
    ...(typeof object.type === "string" ? { type: object.type } : {}),
    keys,
  };
  const decoded = decodeSecretData(
    data as Record<string, string>,
    stringData as Record<string, string>,
  );
  const value = (k: string) => decoded[k] ?? "";
  if (object.type === "kubernetes.io/tls" && keys.includes("tls.crt") && keys.includes("tls.key")) {
    const problem = tlsProblem(value("tls.crt"), value("tls.key"));
    if (problem !== null) meta.tlsProblem = problem;
  }
  if (object.type === "kubernetes.io/tls") return meta;
  if (keys.includes(".htpasswd")) {
    const problem = htpasswdProblem(value(".htpasswd"));
    if (problem !== null) meta.htpasswdProblem = problem;
  }
  const empty = keys.filter(k => value(k) === "");
  if (empty.length > 0) meta.emptyKeys = empty;
  return meta;
}
