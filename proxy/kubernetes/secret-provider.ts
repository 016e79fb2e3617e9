// TLS key pairs and credentials for the in-cluster proxy: the copies the controller keeps in the
// proxy's namespace (proxy/config/certificates.ts), watched so rotation needs no restart.
import { K8s, kind } from "kubernetes-fluent-client";
import { CERTIFICATE_LABEL, CERTIFICATE_SOURCE_ANNOTATION } from "../config/index.ts";
import type { ObjectRef } from "../config/index.ts";
import type { SecretData, SecretProvider, TlsKeyPair } from "../tls/secrets.ts";
import { decodeSecretData, keyPairOf, secretKey } from "../tls/secrets.ts";

export class KubernetesSecretProvider implements SecretProvider {
  private readonly pairs = new Map<string, TlsKeyPair>();
  private readonly credentials = new Map<string, SecretData>();
  private readonly bySecretName = new Map<string, string>();
  private readonly listeners = new Set<() => void>();
  private watcher: { close(): void } | undefined;
  private readonly namespace: string;

  constructor(namespace: string) {
    this.namespace = namespace;
  }

  get(ref: ObjectRef): TlsKeyPair | undefined {
    return this.pairs.get(secretKey(ref));
  }

  data(ref: ObjectRef): SecretData | undefined {
    return this.credentials.get(secretKey(ref));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Applies one watch event; exposed for tests.
  apply(
    secret: {
      metadata?: { name?: string; annotations?: Record<string, string> };
      type?: string;
      data?: Record<string, string>;
    },
    deleted: boolean,
  ): void {
    const name = secret.metadata?.name;
    if (!name) return;
    const previous = this.bySecretName.get(name);
    if (previous) {
      this.pairs.delete(previous);
      this.credentials.delete(previous);
    }
    const source = secret.metadata?.annotations?.[CERTIFICATE_SOURCE_ANNOTATION];
    if (!source || deleted) {
      this.bySecretName.delete(name);
    } else {
      const decoded = decodeSecretData(secret.data);
      const pair = keyPairOf(decoded);
      if (pair) this.pairs.set(source, pair);
      // a certificate's private key is no credential a step should be able to read
      if (secret.type !== "kubernetes.io/tls") this.credentials.set(source, decoded);
      this.bySecretName.set(name, source);
    }
    for (const listener of this.listeners) listener();
  }

  async start(): Promise<void> {
    const watcher = K8s(kind.Secret)
      .InNamespace(this.namespace)
      .WithLabel(CERTIFICATE_LABEL)
      .Watch(
        (secret, phase) =>
          this.apply(
            secret as Parameters<KubernetesSecretProvider["apply"]>[0],
            phase === "DELETED",
          ),
        { relistIntervalSec: 60 },
      );
    this.watcher = watcher;
    await watcher.start();
  }

  stop(): void {
    this.watcher?.close();
  }
}
