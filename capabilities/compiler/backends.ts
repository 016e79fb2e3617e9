// backendRefs → clusters: Service lookup, ReferenceGrant, ports, appProtocol, EndpointSlice endpoints.
import type { Cluster, Endpoint } from "../../proxy/config/index.ts";
import type { BackendTlsPolicies } from "./backend-tls.ts";
import type { Problem } from "./conditions.ts";
import { GATEWAY_GROUP, referenceAllowed } from "./references.ts";
import type { EndpointSlice, ReferenceGrant, Service, ServicePort } from "./snapshot.ts";
import { compareStrings } from "./order.ts";

export interface BackendRefLike {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export type BackendResolution = (
  | { cluster: Cluster; problem?: undefined; refused?: undefined }
  // refused: a BackendTLSPolicy claims the port but cannot be used; the policy's status says
  // why, and the backend answers 500 rather than sending unverified traffic
  | { cluster?: undefined; problem: Problem; refused?: boolean }
) & {
  /** the BackendTLSPolicies ("<namespace>/<name>") that name this backend, winner or not */
  policies?: string[];
};

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
export const LB_POLICY_ANNOTATION = "rauta.io/lb-policy";

// appProtocol → what the proxy speaks, and whether the port requires TLS (which only a
// BackendTLSPolicy can configure: it says how to verify the backend).
function clusterProtocol(
  appProtocol: string | undefined,
): { protocol: Cluster["protocol"]; tls: boolean } | undefined {
  switch ((appProtocol ?? "").toLowerCase()) {
    case "":
    case "http":
      return { protocol: "http1", tls: false };
    case "https":
      return { protocol: "http1", tls: true };
    case "kubernetes.io/h2c":
      return { protocol: "h2c", tls: false };
    case "kubernetes.io/ws":
      return { protocol: "ws", tls: false };
    case "kubernetes.io/wss":
      return { protocol: "ws", tls: true };
    default:
      return undefined;
  }
}

/** The route kinds whose backendRefs resolve here: a GRPCRoute's backends speak HTTP/2. */
export type RouteKind = "HTTPRoute" | "GRPCRoute" | "TLSRoute";

// A GRPCRoute's backend speaks gRPC, which is HTTP/2: in clear text (h2c with prior knowledge)
// unless the port needs TLS (then h2 by ALPN). appProtocols that name another protocol cannot
// carry it.
function grpcProtocol(
  appProtocol: string | undefined,
): { protocol: Cluster["protocol"]; tls: boolean } | undefined {
  switch ((appProtocol ?? "").toLowerCase()) {
    case "":
    case "http":
    case "grpc":
    case "kubernetes.io/h2c":
      return { protocol: "grpc", tls: false };
    case "https":
    case "grpcs":
      return { protocol: "grpc", tls: true };
    default:
      return undefined;
  }
}

export class BackendResolver {
  private readonly services: ReadonlyMap<string, Service>;
  private readonly slicesByService = new Map<string, EndpointSlice[]>();
  private readonly grants: readonly ReferenceGrant[];
  // Clusters are shared by every rule that points at the same Service port.
  readonly clusters = new Map<string, Cluster>();

  private readonly tls: BackendTlsPolicies | undefined;

  constructor(
    services: readonly Service[],
    slices: readonly EndpointSlice[],
    grants: readonly ReferenceGrant[],
    tls?: BackendTlsPolicies,
  ) {
    this.tls = tls;
    this.services = new Map(
      services.map(s => [`${s.metadata.namespace ?? "default"}/${s.metadata.name}`, s]),
    );
    for (const slice of slices) {
      const service = slice.metadata.labels?.[SERVICE_NAME_LABEL];
      if (!service) continue;
      const key = `${slice.metadata.namespace ?? "default"}/${service}`;
      this.slicesByService.set(key, [...(this.slicesByService.get(key) ?? []), slice]);
    }
    this.grants = grants;
  }

  resolve(
    ref: BackendRefLike,
    fromNamespace: string,
    field: string,
    routeKind: RouteKind = "HTTPRoute",
    /** whose protocol the cluster speaks, when not the route's (an ExternalAuth GRPC service) */
    speaks: RouteKind = routeKind,
  ): BackendResolution {
    const group = ref.group ?? "";
    const kind = ref.kind ?? "Service";
    const namespace = ref.namespace ?? fromNamespace;
    if (group !== "" || kind !== "Service") {
      return {
        problem: {
          reason: "InvalidKind",
          message: `${field}: ${group || "core"}/${kind} is not a supported backend kind; reference a Service`,
        },
      };
    }
    const allowed = referenceAllowed(
      { group: GATEWAY_GROUP, kind: routeKind, namespace: fromNamespace },
      { group: "", kind: "Service", namespace, name: ref.name },
      this.grants,
    );
    if (!allowed) {
      return {
        problem: {
          reason: "RefNotPermitted",
          message: `${field}: Service ${namespace}/${ref.name} is in another namespace and no ReferenceGrant in ${namespace} allows ${routeKind}s from ${fromNamespace} to use it`,
        },
      };
    }
    const service = this.services.get(`${namespace}/${ref.name}`);
    if (!service) {
      return {
        problem: {
          reason: "BackendNotFound",
          message: `${field}: Service ${namespace}/${ref.name} does not exist`,
        },
      };
    }
    if (service.spec?.type === "ExternalName") {
      return {
        problem: {
          reason: "UnsupportedProtocol",
          message: `${field}: Service ${namespace}/${ref.name} is an ExternalName Service, which RAUTA does not route to`,
        },
      };
    }
    if (ref.port === undefined) {
      return {
        problem: {
          reason: "BackendNotFound",
          message: `${field}: port is required for a Service backend`,
        },
      };
    }
    const servicePort = service.spec?.ports?.find(p => p.port === ref.port);
    if (!servicePort) {
      const ports = (service.spec?.ports ?? []).map(p => p.port).join(", ") || "none";
      return {
        problem: {
          reason: "BackendNotFound",
          message: `${field}: Service ${namespace}/${ref.name} has no port ${ref.port} (ports: ${ports})`,
        },
      };
    }
    const grpc = speaks === "GRPCRoute";
    // a TLSRoute's backend gets the client's bytes as they are (passthrough: still TLS): its
    // appProtocol and any BackendTLSPolicy are about HTTP, which the gateway does not speak here
    if (routeKind === "TLSRoute")
      return {
        cluster: this.cluster(
          `${namespace}/${ref.name}:${ref.port}/tcp`,
          service,
          servicePort,
          namespace,
          ref.name,
          ref.port,
          "tcp",
        ),
      };
    const app = (grpc ? grpcProtocol : clusterProtocol)(servicePort.appProtocol);
    const where = `${field}: Service ${namespace}/${ref.name} port ${ref.port}`;
    if (!app) {
      return {
        problem: {
          reason: "UnsupportedProtocol",
          message: grpc
            ? `${where} has appProtocol ${servicePort.appProtocol}, which cannot carry gRPC; use kubernetes.io/h2c (or leave it unset) for clear text, https for TLS`
            : `${where} has appProtocol ${servicePort.appProtocol}; RAUTA speaks http, https, kubernetes.io/h2c, kubernetes.io/ws and kubernetes.io/wss to backends`,
        },
      };
    }
    const decision = this.tls?.forPort(namespace, ref.name, servicePort);
    const policy = decision
      ? { policies: this.tls!.claimsOn(namespace, ref.name, servicePort) }
      : {};
    if (decision?.refused) return { problem: decision.refused, refused: true, ...policy };
    if (app.tls && !decision) {
      return {
        problem: {
          reason: "UnsupportedProtocol",
          message: `${where} has appProtocol ${servicePort.appProtocol}, which needs TLS: attach a BackendTLSPolicy that says how to verify the backend`,
        },
      };
    }
    if (decision && (servicePort.appProtocol ?? "").toLowerCase() === "kubernetes.io/h2c") {
      return {
        problem: {
          reason: "UnsupportedProtocol",
          message: `${where}: BackendTLSPolicy ${decision.policy} asks for TLS, but appProtocol kubernetes.io/h2c is cleartext HTTP/2`,
        },
        ...policy,
      };
    }
    const protocol = app.protocol;
    // a Service port reached by gRPC and by HTTP/1 gets one cluster per protocol
    const id = `${namespace}/${ref.name}:${ref.port}${grpc ? "/grpc" : ""}`;
    const cluster = this.cluster(
      id,
      service,
      servicePort,
      namespace,
      ref.name,
      ref.port,
      protocol,
      decision?.tls,
    );
    return { cluster, ...policy };
  }

  // Clusters are shared by every rule that points at the same Service port (and protocol).
  private cluster(
    id: string,
    service: Service,
    servicePort: ServicePort,
    namespace: string,
    name: string,
    port: number,
    protocol: Cluster["protocol"],
    tls?: Cluster["tls"],
  ): Cluster {
    let cluster = this.clusters.get(id);
    if (!cluster) {
      cluster = {
        id,
        service: { namespace, name, port },
        protocol,
        lb:
          service.metadata.annotations?.[LB_POLICY_ANNOTATION] === "maglev"
            ? "maglev"
            : "round-robin",
        ...(tls ? { tls: { ...tls } } : {}),
        endpoints: this.endpointsFor(`${namespace}/${name}`, servicePort),
      };
      this.clusters.set(id, cluster);
    }
    return cluster;
  }

  private endpointsFor(serviceKey: string, servicePort: ServicePort): Endpoint[] {
    const wanted = servicePort.name ?? "";
    const byKey = new Map<string, Endpoint>();
    for (const slice of this.slicesByService.get(serviceKey) ?? []) {
      if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") continue;
      const port = slice.ports?.find(p => (p.name ?? "") === wanted)?.port;
      if (port === undefined) continue;
      for (const endpoint of slice.endpoints ?? []) {
        // Kubernetes: an unknown ready state means ready; serving defaults to ready.
        const ready = endpoint.conditions?.ready ?? true;
        const serving = endpoint.conditions?.serving ?? ready;
        const terminating = endpoint.conditions?.terminating ?? false;
        for (const address of endpoint.addresses) {
          const key = `${address}:${port}`;
          byKey.set(key, {
            address,
            port,
            ready,
            serving,
            terminating,
            ...(endpoint.zone ? { zone: endpoint.zone } : {}),
          });
        }
      }
    }
    return [...byKey.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, e]) => e);
  }
}
