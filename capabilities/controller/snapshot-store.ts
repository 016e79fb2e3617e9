// The controller's view of the cluster: every object the compiler reads, kept current by watch
// events and read whole (level-triggered) when a compile runs. Secrets are reduced to their
// type and key names on the way in, so key material never sits in the controller's memory.
// ConfigMaps are kept as name and resourceVersion, for the reconciler's plugin-module step
// (which reads the few that RautaPlugins name), plus the parsed CA bundle of those with a
// `ca.crt` key (BackendTLSPolicy and Gateway frontend caCertificateRefs); only the ones a
// RautaPlugin, a BackendTLSPolicy or a Gateway names count as changes.
import { frontendCaRefs } from "../compiler/frontend-validation.ts";
import type { CaBundle, Gateway, ObjectMeta, Snapshot } from "../compiler/index.ts";
import { emptySnapshot } from "../compiler/index.ts";
import { caBundle } from "./ca-bundle.ts";
import { secretMeta } from "./secret-meta.ts";

export const SNAPSHOT_KINDS = {
  GatewayClass: "gatewayClasses",
  Gateway: "gateways",
  HTTPRoute: "httpRoutes",
  GRPCRoute: "grpcRoutes",
  TLSRoute: "tlsRoutes",
  ReferenceGrant: "referenceGrants",
  Service: "services",
  EndpointSlice: "endpointSlices",
  Secret: "secrets",
  Namespace: "namespaces",
  RautaPlugin: "rautaPlugins",
  BackendTLSPolicy: "backendTLSPolicies",
  BackendTrafficPolicy: "backendTrafficPolicies",
  ClientTrafficPolicy: "clientTrafficPolicies",
  SecurityPolicy: "securityPolicies",
  ListenerSet: "listenerSets",
} as const satisfies Record<string, keyof Snapshot>;
export type SnapshotKind = keyof typeof SNAPSHOT_KINDS;
/** Every kind the store keeps: the compiler's, and ConfigMaps for the reconciler's I/O. */
export type StoreKind = SnapshotKind | "ConfigMap";

// Kinds whose metadata.generation moves with every spec change (and never with status).
const STATUS_ONLY_KINDS = new Set<SnapshotKind>([
  "GatewayClass",
  "Gateway",
  "HTTPRoute",
  "GRPCRoute",
  "TLSRoute",
  "RautaPlugin",
  "BackendTLSPolicy",
  "BackendTrafficPolicy",
  "ClientTrafficPolicy",
  "SecurityPolicy",
  "ListenerSet",
]);

function sameSpec(a: KubeObject, b: KubeObject): boolean {
  const [x, y] = [a.metadata ?? {}, b.metadata ?? {}];
  return (
    x.generation !== undefined &&
    x.generation === y.generation &&
    JSON.stringify(x.labels ?? {}) === JSON.stringify(y.labels ?? {}) &&
    JSON.stringify(x.annotations ?? {}) === JSON.stringify(y.annotations ?? {}) &&
    JSON.stringify(x.creationTimestamp) === JSON.stringify(y.creationTimestamp)
  );
}

export interface KubeObject {
  metadata?: Partial<ObjectMeta> & { name?: string };
  [key: string]: unknown;
}

function keyOf(object: KubeObject): string | undefined {
  const name = object.metadata?.name;
  return name ? `${object.metadata?.namespace ?? ""}/${name}` : undefined;
}

// the data itself is not kept: only what secretMeta makes of it
function reduceSecret(object: KubeObject): KubeObject {
  const {
    name,
    namespace,
    uid,
    generation,
    resourceVersion,
    creationTimestamp,
    labels,
    annotations,
  } = object.metadata ?? {};
  const meta = secretMeta(object);
  return {
    ...meta,
    metadata: {
      name,
      namespace,
      uid,
      generation,
      resourceVersion,
      creationTimestamp,
      labels,
      annotations,
    },
  } as unknown as KubeObject;
}

function reduceConfigMap(object: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion } = object.metadata ?? {};
  const bundle = caBundle(object);
  return {
    metadata: { name, namespace, uid, resourceVersion },
    ...(bundle ? { caBundle: bundle } : {}),
  };
}

// How many deleted objects the store remembers, to drop late events about them.
const TOMBSTONES = 10_000;

export class SnapshotStore {
  private readonly objects = new Map<StoreKind, Map<string, KubeObject>>();
  // Pepr runs one watch per binding, so an update event (often our own status write) can arrive
  // after the delete event of the same object. "<kind>/<key>" → uid of the deleted object: an
  // event for that uid is stale, one with a new uid is the object created again.
  private readonly tombstones = new Map<string, string>();
  // when each object was last upserted (a tick of `mark()`), so `replace` keeps the objects a
  // watch delivered while the list was under way
  private readonly touched = new Map<string, number>();
  private ticks = 0;
  private changes = 0;
  private readonly listeners = new Set<() => void>();

  get version(): number {
    return this.changes;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  upsert(kind: StoreKind, object: KubeObject): void {
    const key = keyOf(object);
    if (!key) return;
    const uid = object.metadata?.uid;
    const tombstone = this.tombstones.get(`${kind}/${key}`);
    if (tombstone !== undefined) {
      if (uid === tombstone) return;
      this.tombstones.delete(`${kind}/${key}`);
    }
    this.touched.set(`${kind}/${key}`, ++this.ticks);
    const stored =
      kind === "Secret"
        ? reduceSecret(object)
        : kind === "ConfigMap"
          ? reduceConfigMap(object)
          : structuredClone(object);
    const byKey = this.objects.get(kind) ?? new Map<string, KubeObject>();
    this.objects.set(kind, byKey);
    const previous = byKey.get(key);
    // Watches replay objects on relist; an unchanged resourceVersion is not a change.
    const version = stored.metadata?.resourceVersion;
    if (previous && version !== undefined && previous.metadata?.resourceVersion === version) return;
    byKey.set(key, stored);
    // Our own status writes come back as watch events; they change nothing the compiler reads,
    // so they update the stored object (for status diffs) without triggering a compile.
    if (previous && STATUS_ONLY_KINDS.has(kind as SnapshotKind) && sameSpec(previous, stored))
      return;
    if (kind === "ConfigMap" && !this.configMapInUse(key)) return;
    this.changed();
  }

  remove(kind: StoreKind, object: KubeObject): void {
    const key = keyOf(object);
    if (!key) return;
    const uid = object.metadata?.uid ?? this.objects.get(kind)?.get(key)?.metadata?.uid;
    if (uid !== undefined) {
      this.tombstones.set(`${kind}/${key}`, uid);
      if (this.tombstones.size > TOMBSTONES)
        this.tombstones.delete(this.tombstones.keys().next().value!);
    }
    this.touched.delete(`${kind}/${key}`);
    if (!this.objects.get(kind)?.delete(key)) return;
    if (kind === "ConfigMap" && !this.configMapInUse(key)) return;
    this.changed();
  }

  /** Drops an object the API server says is gone (a status write answered 404). */
  forget(kind: StoreKind, namespace: string | undefined, name: string): void {
    const object = this.get(kind, namespace, name);
    if (object) this.remove(kind, object);
  }

  /** A point in the store's history, for `replace`. */
  mark(): number {
    return this.ticks;
  }

  /**
   * Makes `kind` what a full list returned: upserts every item and removes the objects the list
   * does not have, unless a watch delivered them after `since` (the list was started then and
   * may predate them). A delete event a watch missed (reconnects, a standby replica) is mended
   * here.
   */
  replace(kind: StoreKind, items: readonly KubeObject[], since: number): void {
    const listed = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      if (!key) continue;
      listed.add(key);
      this.upsert(kind, item);
    }
    for (const [key, object] of [...(this.objects.get(kind) ?? [])])
      if (!listed.has(key) && (this.touched.get(`${kind}/${key}`) ?? 0) <= since)
        this.remove(kind, object);
  }

  get(kind: StoreKind, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(kind)?.get(`${namespace ?? ""}/${name}`);
  }

  list(kind: StoreKind): KubeObject[] {
    return [...(this.objects.get(kind)?.values() ?? [])];
  }

  snapshot(): Snapshot {
    const snapshot = emptySnapshot();
    for (const [kind, field] of Object.entries(SNAPSHOT_KINDS) as Array<
      [SnapshotKind, keyof Snapshot]
    >) {
      (snapshot[field] as unknown[]) = this.list(kind);
    }
    snapshot.caBundles = this.list("ConfigMap").flatMap(c =>
      c.caBundle ? [c.caBundle as unknown as CaBundle] : [],
    );
    return snapshot;
  }

  private configMapInUse(key: string): boolean {
    return this.pluginModuleSource(key) || this.caCertificateSource(key);
  }

  // Whether a BackendTLSPolicy's or a Gateway's (spec.tls.frontend) caCertificateRefs name the
  // ConfigMap "<namespace>/<name>".
  private caCertificateSource(key: string): boolean {
    for (const gateway of this.objects.get("Gateway")?.values() ?? []) {
      for (const ref of frontendCaRefs(gateway as unknown as Gateway))
        if (`${ref.namespace ?? gateway.metadata?.namespace ?? ""}/${ref.name}` === key)
          return true;
    }
    for (const policy of this.objects.get("BackendTLSPolicy")?.values() ?? []) {
      const refs = (
        policy.spec as { validation?: { caCertificateRefs?: Array<{ name?: string }> } } | undefined
      )?.validation?.caCertificateRefs;
      for (const ref of refs ?? [])
        if (`${policy.metadata?.namespace ?? ""}/${ref.name}` === key) return true;
    }
    return false;
  }

  // Whether a RautaPlugin's configMap source names the ConfigMap "<namespace>/<name>".
  private pluginModuleSource(key: string): boolean {
    for (const plugin of this.objects.get("RautaPlugin")?.values() ?? []) {
      const name = (plugin.spec as { source?: { configMap?: { name?: string } } } | undefined)
        ?.source?.configMap?.name;
      if (name !== undefined && `${plugin.metadata?.namespace ?? ""}/${name}` === key) return true;
    }
    return false;
  }

  private changed(): void {
    this.changes++;
    for (const listener of this.listeners) listener();
  }
}
