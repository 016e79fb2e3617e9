// The control plane's I/O against the Kubernetes API (kubernetes-fluent-client): publish the
// config into ConfigMaps and statuses into status subresources (server-side apply), copy TLS
// Secrets and plugin modules into the proxies' namespace, and read the proxies' heartbeat Leases
// to learn which config generation they have loaded and which plugins failed to load.
import { K8s, kind } from "pepr";
import type { GenericClass } from "kubernetes-fluent-client";
import type { CompiledConfig, ObjectRef } from "../../proxy/config/index.ts";
import {
  CERTIFICATE_LABEL,
  CERTIFICATE_SOURCE_ANNOTATION,
  DEFAULT_CONFIG_MAP,
  certificateCopyName,
  GENERATION_ANNOTATION,
  HASH_ANNOTATION,
  LOADED_GENERATION_ANNOTATION,
  PART_OF_LABEL,
  PLUGIN_PROBLEMS_ANNOTATION,
  PROXY_LEASE_LABEL,
  decodePluginProblems,
  encodeConfigMaps,
} from "../../proxy/config/index.ts";
import type { ConfigMapModuleRef, PluginModule } from "../compiler/index.ts";
import {
  BackendTLSPolicy,
  BackendTrafficPolicy,
  ClientTrafficPolicy,
  SecurityPolicy,
  Gateway,
  GatewayClass,
  GRPCRoute,
  HTTPRoute,
  Lease,
  TLSRoute,
  ListenerSet,
  RautaPlugin,
} from "../kinds.ts";
import { applyStatus } from "./apply-status.ts";
import type { ConfigMapAccess, ConfigMapObject } from "./plugin-modules.ts";
import { PluginModuleSync } from "./plugin-modules.ts";
import type { ProxyReport } from "./plugin-status.ts";
import type { ControlPlaneIO, StatusKind } from "./reconciler.ts";
import type { GatewayService } from "./gateway-services.ts";
import { MANAGED_BY, MANAGED_BY_LABEL } from "./gateway-services.ts";

const STATUS_MODELS = {
  GatewayClass,
  Gateway,
  HTTPRoute,
  GRPCRoute,
  TLSRoute,
  RautaPlugin,
  BackendTLSPolicy,
  BackendTrafficPolicy,
  ClientTrafficPolicy,
  SecurityPolicy,
  ListenerSet,
} as const;

export interface KubernetesIOOptions {
  namespace: string;
  configMapName?: string;
  now?: () => number;
}

export class KubernetesIO implements ControlPlaneIO {
  private readonly namespace: string;
  private readonly name: string;
  private readonly now: () => number;
  // Source Secret "<ns>/<name>" → resourceVersion last copied.
  private readonly copied = new Map<string, string>();
  private readonly modules: PluginModuleSync;

  constructor(options: KubernetesIOOptions) {
    this.namespace = options.namespace;
    this.name = options.configMapName ?? DEFAULT_CONFIG_MAP;
    this.now = options.now ?? Date.now;
    this.modules = new PluginModuleSync(configMapsFromApi, this.namespace);
  }

  async readPublished(): Promise<{ generation: number; hash: string } | undefined> {
    try {
      const map = await K8s(kind.ConfigMap).InNamespace(this.namespace).Get(this.name);
      const annotations = map.metadata?.annotations ?? {};
      const generation = Number(annotations[GENERATION_ANNOTATION]);
      const hash = annotations[HASH_ANNOTATION];
      return Number.isInteger(generation) && hash ? { generation, hash } : undefined;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }

  async publishConfig(config: CompiledConfig): Promise<void> {
    const { manifest, shards } = encodeConfigMaps(config, {
      namespace: this.namespace,
      name: this.name,
    });
    // Shards first, manifest last: a proxy only follows a manifest whose shards all exist.
    for (const shard of shards) await K8s(kind.ConfigMap).Apply(shard, { force: true });
    await K8s(kind.ConfigMap).Apply(manifest, { force: true });
    const keep = new Set([manifest.metadata.name, ...shards.map(s => s.metadata.name)]);
    const existing = await K8s(kind.ConfigMap)
      .InNamespace(this.namespace)
      .WithLabel(PART_OF_LABEL, this.name)
      .Get();
    for (const map of existing.items) {
      const name = map.metadata?.name;
      if (name && !keep.has(name))
        await K8s(kind.ConfigMap).InNamespace(this.namespace).Delete(name);
    }
  }

  async writeStatus(
    statusKind: StatusKind,
    namespace: string | undefined,
    name: string,
    status: Record<string, unknown>,
  ): Promise<"written" | "gone"> {
    const model = STATUS_MODELS[statusKind];
    try {
      await applyStatus(model, namespace, name, status);
      return "written";
    } catch (error) {
      if ((error as { status?: number }).status !== 404) throw error;
      // A 404 of the status subresource alone could mean a CRD without it; only an object the
      // API server no longer has is gone.
      try {
        const client = K8s(model as GenericClass);
        await (namespace ? client.InNamespace(namespace) : client).Get(name);
      } catch (read) {
        if ((read as { status?: number }).status === 404) return "gone";
      }
      throw error;
    }
  }

  async syncGatewayServices(desired: GatewayService[]): Promise<void> {
    const wanted = new Set<string>();
    for (const { service, endpointSlice } of desired) {
      await K8s(kind.Service).Apply(service, { force: true });
      await K8s(kind.EndpointSlice).Apply(endpointSlice, { force: true });
      wanted.add(`${service.metadata?.namespace}/${service.metadata?.name}`);
    }
    // ours (by label) in any namespace, no longer wanted: the Gateway left our class or is not
    // accepted (a deleted Gateway's are collected through their ownerReferences)
    const mine = await K8s(kind.Service).WithLabel(MANAGED_BY_LABEL, MANAGED_BY).Get();
    for (const svc of mine.items) {
      const { namespace, name } = svc.metadata ?? {};
      if (!namespace || !name || wanted.has(`${namespace}/${name}`)) continue;
      await K8s(kind.EndpointSlice)
        .InNamespace(namespace)
        .Delete(name)
        .catch(() => {});
      await K8s(kind.Service).InNamespace(namespace).Delete(name);
    }
  }

  async proxies(): Promise<ProxyReport[]> {
    const leases = await K8s(Lease).InNamespace(this.namespace).WithLabel(PROXY_LEASE_LABEL).Get();
    return proxyReports(leases.items, this.now());
  }

  syncPluginModules(
    refs: ConfigMapModuleRef[],
    version: (ref: ConfigMapModuleRef) => string | undefined,
  ): Promise<PluginModule[]> {
    return this.modules.resolve(refs, version);
  }

  prunePluginModules(modules: PluginModule[]): Promise<void> {
    return this.modules.prune(modules);
  }

  async syncCertificates(
    refs: ObjectRef[],
    version: (ref: ObjectRef) => string | undefined,
  ): Promise<void> {
    const wanted = new Map(refs.map(ref => [`${ref.namespace}/${ref.name}`, ref]));
    for (const [key, ref] of wanted) {
      const current = version(ref);
      if (current !== undefined && this.copied.get(key) === current) continue;
      const source = await K8s(kind.Secret).InNamespace(ref.namespace).Get(ref.name);
      // a certificate copy holds the key pair alone; a credentials Secret (htpasswd users, API
      // keys) is copied whole, as an Opaque Secret, since its keys are the data
      const certificate = source.type === "kubernetes.io/tls";
      await K8s(kind.Secret).Apply(
        {
          metadata: {
            name: certificateCopyName(ref),
            namespace: this.namespace,
            labels: { [CERTIFICATE_LABEL]: "true" },
            annotations: { [CERTIFICATE_SOURCE_ANNOTATION]: key },
          },
          type: certificate ? "kubernetes.io/tls" : "Opaque",
          data: certificate
            ? {
                "tls.crt": source.data?.["tls.crt"] ?? "",
                "tls.key": source.data?.["tls.key"] ?? "",
              }
            : { ...source.data },
        },
        { force: true },
      );
      this.copied.set(key, source.metadata?.resourceVersion ?? current ?? "");
    }
    const copies = await K8s(kind.Secret)
      .InNamespace(this.namespace)
      .WithLabel(CERTIFICATE_LABEL)
      .Get();
    for (const copy of copies.items) {
      const source = copy.metadata?.annotations?.[CERTIFICATE_SOURCE_ANNOTATION];
      if (copy.metadata?.name && (!source || !wanted.has(source))) {
        await K8s(kind.Secret).InNamespace(this.namespace).Delete(copy.metadata.name);
        if (source) this.copied.delete(source);
      }
    }
  }
}

interface LeaseObject {
  metadata?: { name?: string; annotations?: Record<string, string> };
  spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

/** Heartbeat Leases → the proxies still alive (renewed within their duration), as they report. */
export function proxyReports(leases: readonly LeaseObject[], now: number): ProxyReport[] {
  return leases.flatMap(lease => {
    const spec = lease.spec;
    const renewed = spec?.renewTime ? Date.parse(spec.renewTime) : NaN;
    if (!Number.isFinite(renewed) || renewed + (spec?.leaseDurationSeconds ?? 15) * 1000 < now)
      return [];
    const annotations = lease.metadata?.annotations ?? {};
    const raw = annotations[LOADED_GENERATION_ANNOTATION];
    const generation = raw ? Number(raw) : NaN;
    const plugins = decodePluginProblems(annotations[PLUGIN_PROBLEMS_ANNOTATION]);
    return [
      {
        name: spec?.holderIdentity || lease.metadata?.name || "unknown",
        ...(Number.isInteger(generation) ? { generation } : {}),
        ...(plugins ? { plugins } : {}),
      },
    ];
  });
}

// The plugin-module step's ConfigMap calls, through the API (KFC server-side apply).
const configMapsFromApi: ConfigMapAccess = {
  async get(namespace, name) {
    try {
      return (await K8s(kind.ConfigMap).InNamespace(namespace).Get(name)) as ConfigMapObject;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  },
  async apply(map) {
    await K8s(kind.ConfigMap).Apply(map, { force: true });
  },
  async list(namespace, label) {
    const maps = await K8s(kind.ConfigMap).InNamespace(namespace).WithLabel(label).Get();
    return maps.items as ConfigMapObject[];
  },
  async delete(namespace, name) {
    await K8s(kind.ConfigMap).InNamespace(namespace).Delete(name);
  },
};
