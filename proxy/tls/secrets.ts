// Where TLS certificates and credentials come from. The config only references Secrets
// ({namespace, name}); private keys, password hashes and API keys never travel in it. Standalone
// mode serves the Secrets found in the loaded YAML; in a cluster a provider backed by the
// Kubernetes API plugs in here.
import type { ObjectRef } from "../config/schema.ts";

export interface TlsKeyPair {
  /** PEM */
  cert: string;
  /** PEM */
  key: string;
}

/** A Secret's keys and their values, decoded (UTF-8): basic-auth users, API keys. */
export type SecretData = Readonly<Record<string, string>>;

export interface SecretProvider {
  get(ref: ObjectRef): TlsKeyPair | undefined;
  /** every key of a credentials Secret (basic auth, API keys); the same object until it changes */
  data(ref: ObjectRef): SecretData | undefined;
  /** Called when any secret changes (certificate rotation); returns an unsubscribe function. */
  onChange?(listener: () => void): () => void;
}

export function secretKey(ref: ObjectRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** The Secrets a config references, as they travel to a serving worker process. */
export interface SecretBundle {
  keyPairs: Array<[string, TlsKeyPair]>;
  credentials: Array<[string, SecretData]>;
}

/** An in-memory provider; `replace` swaps its contents and notifies (rotation without restart). */
export class StaticSecretProvider implements SecretProvider {
  private secrets: Map<string, TlsKeyPair>;
  private credentials: Map<string, SecretData>;
  private readonly listeners = new Set<() => void>();

  constructor(
    secrets: Map<string, TlsKeyPair> = new Map(),
    credentials: Map<string, SecretData> = new Map(),
  ) {
    this.secrets = new Map(secrets);
    this.credentials = new Map(credentials);
  }

  get(ref: ObjectRef): TlsKeyPair | undefined {
    return this.secrets.get(secretKey(ref));
  }

  data(ref: ObjectRef): SecretData | undefined {
    return this.credentials.get(secretKey(ref));
  }

  replace(secrets: Map<string, TlsKeyPair>, credentials: Map<string, SecretData> = new Map()) {
    const changed =
      secrets.size !== this.secrets.size ||
      [...secrets].some(([k, v]) => {
        const old = this.secrets.get(k);
        return !old || old.cert !== v.cert || old.key !== v.key;
      });
    this.secrets = new Map(secrets);
    // an unchanged Secret keeps its object, so steps keep what they parsed from it
    const next = new Map<string, SecretData>();
    for (const [k, v] of credentials) {
      const old = this.credentials.get(k);
      next.set(k, old !== undefined && sameData(old, v) ? old : v);
    }
    const credentialsChanged =
      next.size !== this.credentials.size ||
      [...next].some(([k, v]) => this.credentials.get(k) !== v);
    this.credentials = next;
    if (changed || credentialsChanged) for (const l of this.listeners) l();
  }

  /** `replace` with a bundle a primary sent. */
  load(bundle: SecretBundle): void {
    this.replace(new Map(bundle.keyPairs), new Map(bundle.credentials));
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
  return keyPairOf(decodeSecretData(data));
}

/** The key pair in a Secret's decoded data (tls.crt / tls.key), if it holds one. */
export function keyPairOf(data: SecretData): TlsKeyPair | undefined {
  const cert = data["tls.crt"];
  const key = data["tls.key"];
  return cert && key ? { cert, key } : undefined;
}

function sameData(a: SecretData, b: SecretData): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every(k => a[k] === b[k]);
}

/** Decodes a Secret's base64 data (and plain stringData, which wins) to text. */
export function decodeSecretData(
  data: Record<string, string> | undefined,
  stringData?: Record<string, string>,
): SecretData {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {}))
    if (typeof v === "string") out[k] = Buffer.from(v, "base64").toString("utf8");
  for (const [k, v] of Object.entries(stringData ?? {})) if (typeof v === "string") out[k] = v;
  return out;
}
