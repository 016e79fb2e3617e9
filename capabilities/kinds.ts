// Kubernetes kinds the control plane reads and writes that kubernetes-fluent-client does not
// know: every Gateway API kind, our RautaPlugin and policies, and coordination Leases (proxy heartbeats and
// leader election). Plurals are explicit: KFC and Pepr otherwise guess "<kind>s", which is wrong
// for GatewayClass (pepr issue #201).
import { a, RegisterKind } from "pepr";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

export class GatewayClass extends a.GenericKind {}
export class Gateway extends a.GenericKind {}
export class HTTPRoute extends a.GenericKind {}
export class GRPCRoute extends a.GenericKind {}
export class TLSRoute extends a.GenericKind {}
export class ReferenceGrant extends a.GenericKind {}
export class RautaPlugin extends a.GenericKind {}
export class BackendTLSPolicy extends a.GenericKind {}
export class ListenerSet extends a.GenericKind {}
export class BackendTrafficPolicy extends a.GenericKind {}
export class ClientTrafficPolicy extends a.GenericKind {}
export class SecurityPolicy extends a.GenericKind {}
export class Lease extends a.GenericKind {}

RegisterKind(GatewayClass, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "GatewayClass",
  plural: "gatewayclasses",
});
RegisterKind(Gateway, { group: GATEWAY_GROUP, version: "v1", kind: "Gateway", plural: "gateways" });
RegisterKind(HTTPRoute, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "HTTPRoute",
  plural: "httproutes",
});
RegisterKind(GRPCRoute, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "GRPCRoute",
  plural: "grpcroutes",
});
RegisterKind(TLSRoute, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "TLSRoute",
  plural: "tlsroutes",
});
RegisterKind(ReferenceGrant, {
  group: GATEWAY_GROUP,
  version: "v1beta1",
  kind: "ReferenceGrant",
  plural: "referencegrants",
});
RegisterKind(BackendTLSPolicy, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "BackendTLSPolicy",
  plural: "backendtlspolicies",
});
RegisterKind(ListenerSet, {
  group: GATEWAY_GROUP,
  version: "v1",
  kind: "ListenerSet",
  plural: "listenersets",
});
RegisterKind(RautaPlugin, {
  group: "rauta.io",
  version: "v1alpha1",
  kind: "RautaPlugin",
  plural: "rautaplugins",
});
RegisterKind(BackendTrafficPolicy, {
  group: "rauta.io",
  version: "v1alpha1",
  kind: "BackendTrafficPolicy",
  plural: "backendtrafficpolicies",
});
RegisterKind(ClientTrafficPolicy, {
  group: "rauta.io",
  version: "v1alpha1",
  kind: "ClientTrafficPolicy",
  plural: "clienttrafficpolicies",
});
RegisterKind(SecurityPolicy, {
  group: "rauta.io",
  version: "v1alpha1",
  kind: "SecurityPolicy",
  plural: "securitypolicies",
});
RegisterKind(Lease, {
  group: "coordination.k8s.io",
  version: "v1",
  kind: "Lease",
  plural: "leases",
});
