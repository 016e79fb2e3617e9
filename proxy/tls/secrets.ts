// Where TLS certificates come from. The config only references Secrets ({namespace, name});
// private keys never travel in it. Standalone mode serves Secrets of type kubernetes.io/tls found
// in the loaded YAML; in a cluster a provider backed by the Kubernetes API plugs in here.
import type { ObjectRef } from "../config/schema.ts";

export interface TlsKeyPair {
  /** PEM */
  cert: string;
  /** PEM */
  key: string;
}

export interface SecretProvider {
  get(ref: ObjectRef): TlsKeyPair | undefined;
  /** Called when any secret changes (certificate rotation); returns an unsubscribe function. */
  onChange?(listener: () => void): () => void;
}

export function secretKey(ref: ObjectRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** An in-memory provider; `replace` swaps its contents and notifies (rotation without restart). */
export class StaticSecretProvider implements SecretProvider {
  private secrets: Map<string, TlsKeyPair>;
  private readonly listeners = new Set<() => void>();

  constructor(secrets: Map<string, TlsKeyPair> = new Map()) {
    this.secrets = new Map(secrets);
  }

  get(ref: ObjectRef): TlsKeyPair | undefined {
    return this.secrets.get(secretKey(ref));
  }

  replace(secrets: Map<string, TlsKeyPair>) {
    const changed =
      secrets.size !== this.secrets.size ||
      [...secrets].some(([k, v]) => {
        const old = this.secrets.get(k);
        return !old || old.cert !== v.cert || old.key !== v.key;
      });
    this.secrets = new Map(secrets);
    if (changed) for (const l of this.listeners) l();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Decodes a kubernetes.io/tls Secret's data (base64 tls.crt / tls.key). */
export function keyPairFromSecretData(
  data: Record<string, string> | undefined,
): TlsKeyPair | undefined {
  const crt = data?.["tls.crt"];
  const key = data?.["tls.key"];
  if (!crt || !key) return undefined;
  return {
    cert: Buffer.from(crt, "base64").toString("utf8"),
    key: Buffer.from(key, "base64").toString("utf8"),
  };
}
