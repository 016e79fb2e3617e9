// GatewayClass acceptance, Gateway addresses, listener validation and conflicts, listener TLS.
import type { ObjectRef, TlsCertificate } from "../../proxy/config/index.ts";
import type { Problem } from "./conditions.ts";
import { combineProblems } from "./conditions.ts";
import { hostnameWithin } from "./hostnames.ts";
import { compareStrings } from "./order.ts";
import { GATEWAY_GROUP, namespacePolicyAdmits, referenceAllowed } from "./references.ts";
import type { ClientValidation } from "./frontend-validation.ts";
import { frontendValidation } from "./frontend-validation.ts";
import type {
  CaBundle,
  Gateway,
  GatewayClass,
  GatewayListener,
  ListenerSet,
  Namespace,
  ReferenceGrant,
  SecretMeta,
} from "./snapshot.ts";

export const SUPPORTED_ROUTE_KINDS: Record<string, string[]> = {
  HTTP: ["HTTPRoute", "GRPCRoute"],
  HTTPS: ["HTTPRoute", "GRPCRoute"],
  TLS: ["TLSRoute"],
};

/** Protocols that may share one port: HTTPS and TLS listeners are told apart by SNI. */
const SHARES_PORT: Record<string, string> = { HTTPS: "TLS", TLS: "HTTPS" };

/** Who declared a listener: the Gateway itself, or a ListenerSet attached to it. */
export interface ListenerOwner {
  kind: "Gateway" | "ListenerSet";
  namespace: string;
  name: string;
}

export interface ListenerModel {
  gateway: Gateway;
  gatewayKey: string;
  owner: ListenerOwner;
  spec: GatewayListener;
  name: string;
  port: number;
  protocol: string;
  hostname: string | undefined;
  socket: string;
  address: string;
  supportedKinds: Array<{ group: string; kind: string }>;
  certificates: TlsCertificate[];
  /** a TLS listener's tls.mode: Passthrough (the backend terminates) or Terminate */
  tlsMode?: "Passthrough" | "Terminate";
  /** client-certificate validation (Gateway spec.tls.frontend) of an HTTPS listener */
  clientValidation?: ClientValidation;
  unaccepted?: Problem;
  conflicted?: Problem;
  unresolved?: Problem;
  attachedRoutes: number;
}

export interface GatewayModel {
  gateway: Gateway;
  key: string;
  address: string;
  reportedAddress?: string;
  addressProblem?: Problem;
  /** no address could be assigned (pool exhausted): accepted, not programmed */
  unassigned?: Problem;
  /** spec.tls.backend.clientCertificateRef, when usable */
  backendClientCertificate?: ObjectRef;
  /** why a Gateway-level TLS reference is unusable (ResolvedRefs False on the Gateway) */
  tlsProblem?: Problem;
  /** the Gateway's own spec.listeners (status.listeners, Gateway parentRefs) */
  listeners: ListenerModel[];
  /** ListenerSets naming this Gateway as their parent, allowed or not, in precedence order */
  listenerSets: ListenerSetModel[];
}

export interface ListenerSetModel {
  set: ListenerSet;
  key: string;
  gateway: GatewayModel;
  /** the Gateway's allowedListeners do not admit it: none of its listeners exist */
  notAllowed?: Problem;
  listeners: ListenerModel[];
}

/** Every listener a Gateway serves: its own, then those of the ListenerSets it admits. */
export function servedListeners(model: GatewayModel): ListenerModel[] {
  return [
    ...model.listeners,
    ...model.listenerSets.flatMap(s => (s.notAllowed ? [] : s.listeners)),
  ];
}

/** Valid, as a ListenerSet counts its listeners: accepted, with every reference resolved. */
export function listenerValid(listener: ListenerModel): boolean {
  return listenerAccepted(listener) && !listener.unresolved;
}

/** A ListenerSet is accepted when one of its listeners is valid. */
export function listenerSetAccepted(model: ListenerSetModel): boolean {
  return !model.notAllowed && model.listeners.some(listenerValid);
}

export function classAcceptance(gatewayClass: GatewayClass): Problem | undefined {
  const ref = gatewayClass.spec.parametersRef;
  if (ref) {
    return {
      reason: "InvalidParameters",
      message: `parametersRef ${ref.group || "core"}/${ref.kind} ${ref.name} is not supported: RAUTA GatewayClasses take no parameters; remove spec.parametersRef`,
    };
  }
  return undefined;
}

// A listener can carry traffic when it is accepted, not conflicted and has what it needs
// (for HTTPS: at least one usable certificate, for any: at least one supported route kind).
export function listenerUsable(listener: ListenerModel): boolean {
  return (
    listenerAccepted(listener) &&
    (listener.protocol === "HTTP" ||
      listener.tlsMode === "Passthrough" ||
      listener.certificates.length > 0)
  );
}

// A listener routes can attach to: accepted, not conflicted, with a supported route kind. Its
// references (certificates) need not resolve: routes still attach and are counted, as the
// conformance test GatewayWithAttachedRoutes requires, but the listener is not programmed.
export function listenerAccepted(listener: ListenerModel): boolean {
  return !listener.unaccepted && !listener.conflicted && listener.supportedKinds.length > 0;
}

const IP_ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:.]*)$/;

function resolveAddress(
  gateway: Gateway,
  assigned: string | undefined,
  fallback: string,
  required: boolean,
  usable: ReadonlySet<string> | undefined,
): Pick<GatewayModel, "address" | "reportedAddress" | "addressProblem" | "unassigned"> {
  const requested = gateway.spec.addresses ?? [];
  const unsupported = requested.find(a => (a.type ?? "IPAddress") !== "IPAddress");
  if (unsupported) {
    return {
      address: fallback,
      addressProblem: {
        reason: "UnsupportedAddress",
        message: `spec.addresses: type ${unsupported.type} is not supported; RAUTA binds IPAddress addresses only`,
      },
    };
  }
  const invalid = requested.find(a => !IP_ADDRESS.test(a.value ?? ""));
  if (invalid) {
    return {
      address: fallback,
      addressProblem: {
        reason: "UnsupportedAddress",
        message: `spec.addresses: ${JSON.stringify(invalid.value)} is not an IP address`,
      },
    };
  }
  // A static address the proxies cannot bind: accepted, not programmed, until it is removed
  const notUsable = usable ? requested.filter(a => !usable.has(a.value!)) : [];
  if (notUsable.length > 0)
    return {
      address: `unassigned:${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`,
      unassigned: {
        reason: "AddressNotUsable",
        message: `spec.addresses: ${notUsable.map(a => a.value).join(", ")} cannot be bound by the proxies (usable: the controller's address pool, RAUTA_ADDRESS_POOL)`,
      },
    };
  if (requested.length > 1) {
    return {
      address: requested[0]!.value!,
      reportedAddress: requested[0]!.value!,
      addressProblem: {
        reason: "UnsupportedAddress",
        message: "spec.addresses: RAUTA binds one address per Gateway; list a single IPAddress",
      },
    };
  }
  if (required && requested.length === 0 && assigned === undefined)
    return {
      // a socket of its own: an unassigned Gateway must not conflict with the others
      address: `unassigned:${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`,
      unassigned: {
        reason: "AddressNotAssigned",
        message:
          "no address is left in the controller's pool (RAUTA_ADDRESS_POOL); the Gateway is programmed once one is free, or set spec.addresses",
      },
    };
  const address = requested[0]?.value ?? assigned ?? fallback;
  const wildcard = address === "0.0.0.0" || address === "::";
  return { address, ...(wildcard ? {} : { reportedAddress: address }) };
}

function validateListener(
  listener: ListenerModel,
  grants: readonly ReferenceGrant[],
  secrets: ReadonlyMap<string, SecretMeta>,
): void {
  const { spec, protocol } = listener;
  const supported = SUPPORTED_ROUTE_KINDS[protocol];
  if (!supported) {
    listener.unaccepted = {
      reason: "UnsupportedProtocol",
      message: `listener ${listener.name}: protocol ${protocol} is not supported; use HTTP, HTTPS or TLS`,
    };
    return;
  }
  const requestedKinds = spec.allowedRoutes?.kinds;
  if (requestedKinds && requestedKinds.length > 0) {
    const invalid: string[] = [];
    for (const kind of requestedKinds) {
      const group = kind.group ?? GATEWAY_GROUP;
      if (group !== GATEWAY_GROUP || !supported.includes(kind.kind))
        invalid.push(`${group}/${kind.kind}`);
      // Listed twice (group spelled out and defaulted): report it once.
      else if (!listener.supportedKinds.some(k => k.kind === kind.kind))
        listener.supportedKinds.push({ group, kind: kind.kind });
    }
    if (invalid.length > 0) {
      listener.unresolved = {
        reason: "InvalidRouteKinds",
        message: `listener ${listener.name}: allowedRoutes.kinds ${invalid.join(", ")} cannot attach to a ${protocol} listener (supported: ${supported.join(", ")})`,
      };
    }
  } else {
    listener.supportedKinds.push(...supported.map(kind => ({ group: GATEWAY_GROUP, kind })));
  }
  if (protocol === "HTTPS" || protocol === "TLS") validateTls(listener, grants, secrets);
}

function validateTls(
  listener: ListenerModel,
  grants: readonly ReferenceGrant[],
  secrets: ReadonlyMap<string, SecretMeta>,
): void {
  const tls = listener.spec.tls;
  const where = `listener ${listener.name}`;
  const mode = tls?.mode ?? "Terminate";
  if (listener.protocol === "TLS") {
    if (mode !== "Terminate" && mode !== "Passthrough") {
      listener.unaccepted = {
        reason: "UnsupportedValue",
        message: `${where}: tls.mode ${mode} is not supported; use Passthrough or Terminate`,
      };
      return;
    }
    listener.tlsMode = mode;
    // the backend terminates: no certificate of ours is involved
    if (mode === "Passthrough") return;
  } else if (mode !== "Terminate") {
    listener.unaccepted = {
      reason: "UnsupportedValue",
      message: `${where}: tls.mode ${mode} is not supported on HTTPS; use Terminate (or protocol TLS with a TLSRoute to pass TLS through)`,
    };
    return;
  }
  const refs = tls?.certificateRefs ?? [];
  if (refs.length === 0) {
    addUnresolved(listener, [
      {
        reason: "InvalidCertificateRef",
        message: `${where}: ${listener.protocol} in mode Terminate needs tls.certificateRefs`,
      },
    ]);
    return;
  }
  const problems: Problem[] = [];
  refs.forEach((ref, index) => {
    const resolved = resolveCertificateSecret(
      ref,
      listener.owner.namespace,
      `${where}: tls.certificateRefs[${index}]`,
      grants,
      secrets,
      "InvalidCertificateRef",
      listener.owner.kind,
    );
    if ("reason" in resolved) {
      problems.push(resolved);
      return;
    }
    listener.certificates.push({ secretRef: resolved, hostnames: [listener.hostname ?? "*"] });
  });
  addUnresolved(listener, problems);
}

// Keeps an earlier problem (InvalidRouteKinds, an unusable certificate): a listener has one
// ResolvedRefs condition, which must name every problem.
function addUnresolved(listener: ListenerModel, problems: readonly Problem[]): void {
  if (problems.length === 0) return;
  listener.unresolved = combineProblems(
    listener.unresolved ? [listener.unresolved, ...problems] : problems,
  );
}

function applyFrontendValidation(
  listener: ListenerModel,
  grants: readonly ReferenceGrant[],
  bundles: ReadonlyMap<string, CaBundle>,
): void {
  const result = frontendValidation(listener.gateway, listener.port, grants, bundles);
  if (!result) return;
  if (result.validation) listener.clientValidation = result.validation;
  if (result.unresolved) addUnresolved(listener, [result.unresolved]);
  // without a CA to verify against, the listener must not serve at all (it would either let
  // every client through or none)
  if (result.unaccepted && !listener.unaccepted) listener.unaccepted = result.unaccepted;
}

/**
 * A Gateway's reference to a kubernetes.io/tls Secret (a listener certificate, the backend
 * client certificate): the Secret, or the Problem that makes it unusable. `invalidReason` is
 * the reason the spec gives this reference for a missing or unusable Secret.
 */
export function resolveCertificateSecret(
  ref: { group?: string; kind?: string; name: string; namespace?: string },
  gatewayNamespace: string,
  field: string,
  grants: readonly ReferenceGrant[],
  secrets: ReadonlyMap<string, SecretMeta>,
  invalidReason: string,
  // a ListenerSet's listeners refer as the ListenerSet: a grant for Gateways does not cover them
  referrerKind: "Gateway" | "ListenerSet" = "Gateway",
): ObjectRef | Problem {
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Secret";
  const targetNamespace = ref.namespace ?? gatewayNamespace;
  if (group !== "" || kind !== "Secret")
    return {
      reason: invalidReason,
      message: `${field}: ${group || "core"}/${kind} is not supported; reference a Secret`,
    };
  const allowed = referenceAllowed(
    { group: GATEWAY_GROUP, kind: referrerKind, namespace: gatewayNamespace },
    { group: "", kind: "Secret", namespace: targetNamespace, name: ref.name },
    grants,
  );
  if (!allowed)
    return {
      reason: "RefNotPermitted",
      message: `${field}: Secret ${targetNamespace}/${ref.name} is in another namespace and no ReferenceGrant in ${targetNamespace} allows ${referrerKind}s from ${gatewayNamespace} to use it`,
    };
  const secret = secrets.get(`${targetNamespace}/${ref.name}`);
  if (!secret)
    return {
      reason: invalidReason,
      message: `${field}: Secret ${targetNamespace}/${ref.name} does not exist`,
    };
  if (
    secret.type !== "kubernetes.io/tls" ||
    !secret.keys.includes("tls.crt") ||
    !secret.keys.includes("tls.key")
  )
    return {
      reason: invalidReason,
      message: `${field}: Secret ${targetNamespace}/${ref.name} is not a kubernetes.io/tls Secret with tls.crt and tls.key`,
    };
  if (secret.tlsProblem !== undefined)
    return {
      reason: invalidReason,
      message: `${field}: Secret ${targetNamespace}/${ref.name}: ${secret.tlsProblem}`,
    };
  return { namespace: targetNamespace, name: ref.name };
}

// Listeners sharing a socket (address:port) must be distinct: one protocol per port, and for
// HTTP/HTTPS a unique hostname. The spec forbids picking a winner: every party to a conflict
// is Conflicted and carries no traffic. This also covers Gateways merged onto one address.
function markConflicts(listeners: ListenerModel[]): void {
  const bySocket = new Map<string, ListenerModel[]>();
  for (const listener of listeners) {
    if (listener.unaccepted) continue;
    bySocket.set(listener.socket, [...(bySocket.get(listener.socket) ?? []), listener]);
  }
  for (const group of bySocket.values()) {
    const protocols = new Set(group.map(l => l.protocol));
    const [first, second] = [...protocols];
    if (protocols.size > 2 || (second !== undefined && SHARES_PORT[first!] !== second)) {
      for (const listener of group) {
        listener.conflicted = {
          reason: "ProtocolConflict",
          message: `listener ${listener.name}: port ${listener.port} is used with protocols ${[...protocols].sort().join(" and ")}; one port carries one protocol (HTTPS and TLS excepted: SNI tells them apart)`,
        };
      }
      continue;
    }
    const byHostname = new Map<string, ListenerModel[]>();
    for (const listener of group) {
      const key = listener.hostname ?? "";
      byHostname.set(key, [...(byHostname.get(key) ?? []), listener]);
    }
    for (const [hostname, same] of byHostname) {
      if (same.length < 2) continue;
      const names = same.map(l => `${l.gatewayKey}/${l.name}`).join(", ");
      for (const listener of same) {
        listener.conflicted = {
          reason: "HostnameConflict",
          message: `listener ${listener.name}: listeners ${names} share port ${listener.port} and hostname ${hostname || "(none)"}; give each a distinct hostname or port`,
        };
      }
    }
  }
}

export interface GatewayInputs {
  gateways: Gateway[];
  grants: readonly ReferenceGrant[];
  secrets: ReadonlyMap<string, SecretMeta>;
  defaultAddress: string;
  addressesRequired?: boolean;
  assignedAddresses?: ReadonlyMap<string, string>;
  /** Addresses the proxies can bind; absent: any requested address is taken as bindable */
  usableAddresses?: ReadonlySet<string>;
  /** CA bundles by "<namespace>/<name>" of their ConfigMap */
  caBundles?: ReadonlyMap<string, CaBundle>;
  listenerSets?: readonly ListenerSet[];
  /** for allowedListeners selectors */
  namespaces?: ReadonlyMap<string, Namespace>;
}

export function buildGateways({
  gateways,
  grants,
  secrets,
  defaultAddress,
  addressesRequired = false,
  assignedAddresses,
  usableAddresses,
  caBundles = new Map(),
  listenerSets = [],
  namespaces = new Map(),
}: GatewayInputs): GatewayModel[] {
  const models = gateways.map(gateway => {
    const key = `${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`;
    const address = resolveAddress(
      gateway,
      assignedAddresses?.get(key),
      defaultAddress,
      addressesRequired,
      usableAddresses,
    );
    const model: GatewayModel = { gateway, key, ...address, listeners: [], listenerSets: [] };
    // RAUTA has no parameters kind: whatever a parametersRef names, it cannot be used
    const params = gateway.spec.infrastructure?.parametersRef;
    if (params && !model.addressProblem)
      model.addressProblem = {
        reason: "InvalidParameters",
        message: `spec.infrastructure.parametersRef: RAUTA takes no parameters for a Gateway (${params.group || "core"}/${params.kind} ${params.name} cannot be used); remove it`,
      };
    const clientRef = gateway.spec.tls?.backend?.clientCertificateRef;
    if (clientRef) {
      const resolved = resolveCertificateSecret(
        clientRef,
        gateway.metadata.namespace ?? "default",
        "spec.tls.backend.clientCertificateRef",
        grants,
        secrets,
        "InvalidClientCertificateRef",
      );
      if ("reason" in resolved) model.tlsProblem = resolved;
      else model.backendClientCertificate = resolved;
    }
    const own: ListenerOwner = {
      kind: "Gateway",
      namespace: gatewayNamespace(gateway),
      name: gateway.metadata.name,
    };
    model.listeners = gateway.spec.listeners.map(spec =>
      makeListener(model, spec, own, grants, secrets, caBundles),
    );
    return model;
  });
  markConflicts(models.flatMap(m => m.listeners));
  attachListenerSets(models, listenerSets, namespaces, grants, secrets, caBundles);
  return models;
}

function gatewayNamespace(gateway: Gateway): string {
  return gateway.metadata.namespace ?? "default";
}

function makeListener(
  model: GatewayModel,
  spec: GatewayListener,
  owner: ListenerOwner,
  grants: readonly ReferenceGrant[],
  secrets: ReadonlyMap<string, SecretMeta>,
  caBundles: ReadonlyMap<string, CaBundle>,
): ListenerModel {
  const listener: ListenerModel = {
    gateway: model.gateway,
    gatewayKey: model.key,
    owner,
    spec,
    name: spec.name,
    port: spec.port,
    protocol: spec.protocol,
    hostname: spec.hostname || undefined,
    address: model.address,
    // IPv6 addresses in brackets, as in URLs, so the port stays unambiguous.
    socket: model.address.includes(":")
      ? `[${model.address}]:${spec.port}`
      : `${model.address}:${spec.port}`,
    supportedKinds: [],
    certificates: [],
    attachedRoutes: 0,
  };
  validateListener(listener, grants, secrets);
  if (listener.protocol === "HTTPS") applyFrontendValidation(listener, grants, caBundles);
  return listener;
}

// Whether the Gateway's spec.allowedListeners admits a ListenerSet from `namespace` (absent:
// None, so a Gateway takes no ListenerSets unless it says so).
function listenerSetAllowed(
  gateway: Gateway,
  namespace: string,
  namespaces: ReadonlyMap<string, Namespace>,
): boolean {
  return namespacePolicyAdmits(
    gateway.spec.allowedListeners?.namespaces,
    "None",
    namespace,
    gatewayNamespace(gateway),
    namespaces,
  );
}

// Listener precedence (GEP-1713): the Gateway's own listeners, then ListenerSets by creation
// time, then namespace/name. A ListenerSet listener that collides with one before it loses
// (the one before keeps serving), unlike listeners of one Gateway, where every party loses.
function attachListenerSets(
  models: GatewayModel[],
  sets: readonly ListenerSet[],
  namespaces: ReadonlyMap<string, Namespace>,
  grants: readonly ReferenceGrant[],
  secrets: ReadonlyMap<string, SecretMeta>,
  caBundles: ReadonlyMap<string, CaBundle>,
): void {
  if (sets.length === 0) return;
  const byKey = new Map(models.map(m => [m.key, m]));
  // ours, admitted, in precedence order: the order conflicts are resolved in below
  const admitted: ListenerSetModel[] = [];
  for (const set of [...sets].sort(byPrecedence)) {
    const ref = set.spec.parentRef;
    if ((ref.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref.kind ?? "Gateway") !== "Gateway")
      continue;
    const namespace = set.metadata.namespace ?? "default";
    const gateway = byKey.get(`${ref.namespace ?? namespace}/${ref.name}`);
    if (!gateway) continue; // not one of our Gateways: another controller reports on it
    const owner: ListenerOwner = { kind: "ListenerSet", namespace, name: set.metadata.name };
    const model: ListenerSetModel = { set, key: setKey(set), gateway, listeners: [] };
    gateway.listenerSets.push(model);
    if (!listenerSetAllowed(gateway.gateway, namespace, namespaces)) {
      model.notAllowed = {
        reason: "NotAllowed",
        message: `Gateway ${gateway.key} does not allow ListenerSets from namespace ${namespace} (see its spec.allowedListeners)`,
      };
      continue;
    }
    model.listeners = set.spec.listeners.map(spec =>
      makeListener(gateway, spec as GatewayListener, owner, grants, secrets, caBundles),
    );
    admitted.push(model);
  }
  // conflicts on each socket, in precedence order, against what is already there
  const taken = new Map<string, ListenerModel[]>();
  for (const listener of models.flatMap(m => m.listeners))
    if (!listener.unaccepted && !listener.conflicted)
      (taken.get(listener.socket) ?? taken.set(listener.socket, []).get(listener.socket)!).push(
        listener,
      );
  const setListeners = admitted.flatMap(s => s.listeners);
  for (const listener of setListeners) {
    const before = taken.get(listener.socket) ?? [];
    const protocolClash = before.find(l => l.protocol !== listener.protocol);
    const hostnameClash = before.find(
      l => l.protocol === listener.protocol && (l.hostname ?? "") === (listener.hostname ?? ""),
    );
    const where = (l: ListenerModel) =>
      `${l.owner.kind} ${l.owner.namespace}/${l.owner.name} listener ${l.name}`;
    if (protocolClash)
      listener.conflicted = {
        reason: "ProtocolConflict",
        message: `listener ${listener.name}: port ${listener.port} already carries ${protocolClash.protocol} (${where(protocolClash)}), which takes precedence; one port carries one protocol`,
      };
    else if (hostnameClash)
      listener.conflicted = {
        reason: "HostnameConflict",
        message: `listener ${listener.name}: port ${listener.port} and hostname ${listener.hostname ?? "(none)"} are already taken by ${where(hostnameClash)}, which takes precedence`,
      };
    else if (!listener.unaccepted) {
      before.push(listener);
      taken.set(listener.socket, before);
    }
  }
}

// older first; a tie by namespace/name
function byPrecedence(a: ListenerSet, b: ListenerSet): number {
  return (
    compareStrings(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") ||
    compareStrings(setKey(a), setKey(b))
  );
}

function setKey(set: ListenerSet): string {
  return `${set.metadata.namespace ?? "default"}/${set.metadata.name}`;
}

// The listener on the same socket that a request for `hostname` belongs to: the most specific
// listener hostname that covers it (listener isolation).
export function owningListener(
  hostname: string,
  candidates: readonly ListenerModel[],
): ListenerModel | undefined {
  let best: ListenerModel | undefined;
  for (const listener of candidates) {
    const pattern = listener.hostname ?? "*";
    if (!hostnameWithin(hostname, pattern) && pattern !== hostname) continue;
    if (!best || specificityOf(listener) > specificityOf(best)) best = listener;
  }
  return best;
}

function specificityOf(listener: ListenerModel): number {
  const hostname = listener.hostname;
  if (!hostname) return 0;
  return (
    (hostname.startsWith("*.") ? 1_000 : 1_000_000) +
    hostname.split(".").length * 1_000 +
    hostname.length
  );
}
