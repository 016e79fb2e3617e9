// One Service per accepted Gateway, in the Gateway's namespace: the Gateway's "generated
// infrastructure" of GEP-1762. The proxies are shared (a DaemonSet or Deployment in
// rauta-system), so the Service has no selector; its EndpointSlice points at the Gateway's
// address and listener ports. It gives in-cluster clients a stable name for the Gateway
// (rauta-<gateway>.<namespace>.svc), and it is where spec.infrastructure's labels and annotations
// land (conformance: GatewayInfrastructure). Owned by the Gateway, so deleting the Gateway deletes
// it; a Gateway that is no longer ours or no longer accepted loses it at the next reconcile.
import { createHash } from "node:crypto";
import type { kind } from "pepr";
import type { KubeObject } from "./snapshot-store.ts";
import type { ObjectStatus } from "../compiler/types.ts";

export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "rauta";

export interface GatewayService {
  service: kind.Service;
  endpointSlice: kind.EndpointSlice;
}

interface GatewaySpec {
  listeners?: Array<{ port: number }>;
  infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** `rauta-<gateway>`, within the 63 characters a Service name may have. */
export function serviceName(gateway: string): string {
  const name = `rauta-${gateway}`;
  if (name.length <= 63) return name;
  const hash = createHash("sha256").update(gateway).digest("hex").slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, "")}-${hash}`;
}

/** The Services (and their EndpointSlices) the accepted Gateways among `statuses` should have. */
export function gatewayServices(
  gateways: readonly KubeObject[],
  statuses: readonly ObjectStatus[],
): GatewayService[] {
  const byKey = new Map(
    gateways.map(g => [`${g.metadata?.namespace ?? "default"}/${g.metadata?.name}`, g]),
  );
  const out: GatewayService[] = [];
  for (const s of statuses) {
    if (s.kind !== "Gateway") continue;
    const status = s.status as {
      conditions?: Array<{ type: string; status: string }>;
      addresses?: Array<{ value: string }>;
    };
    if (!status.conditions?.some(c => c.type === "Accepted" && c.status === "True")) continue;
    const gateway = byKey.get(`${s.namespace}/${s.name}`);
    const uid = gateway?.metadata?.uid;
    if (!gateway || !uid) continue;
    const spec = (gateway.spec ?? {}) as GatewaySpec;
    const name = serviceName(s.name);
    const labels = {
      ...spec.infrastructure?.labels,
      [GATEWAY_NAME_LABEL]: s.name,
      [MANAGED_BY_LABEL]: MANAGED_BY,
    };
    const annotations = { ...spec.infrastructure?.annotations };
    const ownerReferences = [
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: s.name, uid },
    ];
    const ports = [...new Set((spec.listeners ?? []).map(l => l.port))]
      .sort((a, b) => a - b)
      .map(port => ({ name: `tcp-${port}`, port, protocol: "TCP" }));
    const address = status.addresses?.[0]?.value;
    out.push({
      service: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: s.namespace, labels, annotations, ownerReferences },
        spec: {
          type: "ClusterIP",
          ports: ports.map(p => ({ ...p, targetPort: p.port })),
        },
      },
      endpointSlice: {
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name,
          namespace: s.namespace,
          labels: {
            ...labels,
            "kubernetes.io/service-name": name,
            // a label value holds no "/": the controller as a DNS-like name, as kube-controller-manager does
            "endpointslice.kubernetes.io/managed-by": "gateway-controller.rauta.io",
          },
          annotations,
          ownerReferences,
        },
        addressType: address?.includes(":") ? "IPv6" : "IPv4",
        ports,
        endpoints:
          address === undefined ? [] : [{ addresses: [address], conditions: { ready: true } }],
      },
    });
  }
  return out;
}
