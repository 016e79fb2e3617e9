// The compiler's input: every object it reads, as plain data. Gateway API kinds use the types
// generated from the pinned CRDs (experimental channel: a superset of standard, so fields such
// as rule.retry are visible); core kinds use the few fields the compiler reads.
import type { GatewayClassV1 } from "../../generated/gateway-api/experimental/gatewayclass-v1.ts";
import type { GatewayV1 } from "../../generated/gateway-api/experimental/gateway-v1.ts";
import type { HTTPRouteV1 } from "../../generated/gateway-api/experimental/httproute-v1.ts";
import type { GRPCRouteV1 } from "../../generated/gateway-api/experimental/grpcroute-v1.ts";
import type { TLSRouteV1 } from "../../generated/gateway-api/experimental/tlsroute-v1.ts";
import type { ReferenceGrantV1 } from "../../generated/gateway-api/experimental/referencegrant-v1.ts";
import type { BackendTLSPolicyV1 } from "../../generated/gateway-api/experimental/backendtlspolicy-v1.ts";
import type { ListenerSetV1 } from "../../generated/gateway-api/experimental/listenerset-v1.ts";
import type { RautaPluginV1Alpha1 } from "../../generated/rauta/rautaplugin-v1alpha1.ts";
import type { BackendTrafficPolicyV1Alpha1 } from "../../generated/rauta/backendtrafficpolicy-v1alpha1.ts";
import type { ClientTrafficPolicyV1Alpha1 } from "../../generated/rauta/clienttrafficpolicy-v1alpha1.ts";
import type { SecurityPolicyV1Alpha1 } from "../../generated/rauta/securitypolicy-v1alpha1.ts";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

type WithMeta<T> = Omit<T, "metadata"> & { metadata: ObjectMeta };

export type GatewayClass = WithMeta<GatewayClassV1>;
export type Gateway = WithMeta<GatewayV1>;
export type HTTPRoute = WithMeta<HTTPRouteV1>;
export type GRPCRoute = WithMeta<GRPCRouteV1>;
export type TLSRoute = WithMeta<TLSRouteV1>;
export type ReferenceGrant = WithMeta<ReferenceGrantV1>;
export type RautaPlugin = WithMeta<RautaPluginV1Alpha1>;
export type BackendTLSPolicy = WithMeta<BackendTLSPolicyV1>;
export type ListenerSet = WithMeta<ListenerSetV1>;
export type BackendTrafficPolicy = WithMeta<BackendTrafficPolicyV1Alpha1>;
export type ClientTrafficPolicy = WithMeta<ClientTrafficPolicyV1Alpha1>;
export type SecurityPolicy = WithMeta<SecurityPolicyV1Alpha1>;

export type HTTPRouteRule = NonNullable<HTTPRoute["spec"]["rules"]>[number];
export type HTTPRouteMatch = NonNullable<HTTPRouteRule["matches"]>[number];
export type HTTPRouteFilter = NonNullable<HTTPRouteRule["filters"]>[number];
export type HTTPBackendRef = NonNullable<HTTPRouteRule["backendRefs"]>[number];
export type GRPCRouteRule = NonNullable<GRPCRoute["spec"]["rules"]>[number];
export type GRPCRouteMatch = NonNullable<GRPCRouteRule["matches"]>[number];
export type ParentRef = NonNullable<HTTPRoute["spec"]["parentRefs"]>[number];
export type GatewayListener = Gateway["spec"]["listeners"][number];

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}
export interface Service {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { type?: string; clusterIP?: string; ports?: ServicePort[]; externalName?: string };
}

export interface EndpointSlice {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  addressType: string;
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    zone?: string;
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string; appProtocol?: string }>;
}

// Only what a Secret's use as a certificate or as credentials needs: its type, which keys it has
// and what is wrong with them. The data never reaches the compiler, so it can never reach the
// config.
export interface SecretMeta {
  metadata: ObjectMeta;
  type?: string;
  keys: string[];
  /** a kubernetes.io/tls Secret whose tls.crt/tls.key cannot serve TLS: why */
  tlsProblem?: string;
  /** a .htpasswd key the gateway cannot check users against: why */
  htpasswdProblem?: string;
  /** keys whose value is empty (an API key nobody can present) */
  emptyKeys?: string[];
}

// What the compiler knows of a ConfigMap that holds a CA bundle under `ca.crt` (a
// BackendTLSPolicy's caCertificateRefs): the certificates, re-encoded as PEM, or why there are
// none. CA certificates are public; they travel in the config.
export interface CaBundle {
  metadata: ObjectMeta;
  /** PEM, one or more certificates; absent when problem is set */
  certificates?: string;
  problem?: string;
}

export interface Namespace {
  metadata: ObjectMeta;
}

// A module a RautaPlugin's configMap source names, as the controller found it (an I/O step before
// compile, capabilities/controller/plugin-modules.ts): the digest of its bytes and the copy in
// the proxies' namespace the config points at, or why there is none.
export interface ConfigMapModuleRef {
  namespace: string;
  name: string;
  key: string;
}
export type PluginModule =
  | { source: ConfigMapModuleRef; digest: string; copy: ConfigMapModuleRef; problem?: undefined }
  | {
      source: ConfigMapModuleRef;
      problem: { reason: "SourceNotFound" | "InvalidSource"; message: string };
      digest?: undefined;
      copy?: undefined;
    };

export interface Snapshot {
  gatewayClasses: GatewayClass[];
  gateways: Gateway[];
  httpRoutes: HTTPRoute[];
  // optional: snapshots written before GRPCRoute support still compile
  grpcRoutes?: GRPCRoute[];
  tlsRoutes?: TLSRoute[];
  referenceGrants: ReferenceGrant[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  secrets: SecretMeta[];
  namespaces: Namespace[];
  rautaPlugins: RautaPlugin[];
  // optional: snapshots written before BackendTLSPolicy support still compile
  backendTLSPolicies?: BackendTLSPolicy[];
  listenerSets?: ListenerSet[];
  backendTrafficPolicies?: BackendTrafficPolicy[];
  clientTrafficPolicies?: ClientTrafficPolicy[];
  securityPolicies?: SecurityPolicy[];
  caBundles?: CaBundle[];
  // Absent in standalone mode, where nothing copies modules: a configMap source then compiles to
  // the ConfigMap it names.
  pluginModules?: PluginModule[];
}

export function emptySnapshot(): Snapshot {
  return {
    gatewayClasses: [],
    gateways: [],
    httpRoutes: [],
    grpcRoutes: [],
    tlsRoutes: [],
    referenceGrants: [],
    services: [],
    endpointSlices: [],
    secrets: [],
    namespaces: [],
    rautaPlugins: [],
    backendTLSPolicies: [],
    listenerSets: [],
    backendTrafficPolicies: [],
    clientTrafficPolicies: [],
    securityPolicies: [],
    caBundles: [],
  };
}
