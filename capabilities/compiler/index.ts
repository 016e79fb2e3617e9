// compile(snapshot) → { config, statuses }: pure and deterministic. The same objects in any
// order give the same bytes and hash. No I/O, no clock, no Kubernetes client: this module is
// bundled into the Pepr controller and also runs in `rauta compile|serve`.
import type {
  Cluster,
  Listener,
  Route,
  StreamEntry,
  VirtualHost,
} from "../../proxy/config/index.ts";
import { CONFIG_API_VERSION, sealConfig } from "../../proxy/config/index.ts";
import { attachRoute } from "./attachment.ts";
import type { AttachedRoute } from "./kind-conflicts.ts";
import { resolveKindConflicts } from "./kind-conflicts.ts";
import { BackendTlsPolicies } from "./backend-tls.ts";
import { BackendResolver } from "./backends.ts";
import { bundlesByKey } from "./ca-refs.ts";
import type { Problem } from "./conditions.ts";
import { conditionFactory } from "./conditions.ts";
import { supportedFeatures } from "./features.ts";
import type { GatewayModel, ListenerModel, ListenerSetModel } from "./gateways.ts";
import {
  buildGateways,
  classAcceptance,
  listenerAccepted,
  listenerSetAccepted,
  listenerUsable,
  listenerValid,
  owningListener,
  servedListeners,
} from "./gateways.ts";
import { compareSpecificity } from "./hostnames.ts";
import { PluginIndex } from "./plugins.ts";
import { ClientPolicies } from "./client-policies.ts";
import { ServedRoutes } from "./served-routes.ts";
import { TrafficPolicies } from "./traffic-policies.ts";
import { SecurityPolicies } from "./security-policies.ts";
import type { RankedEntry } from "./precedence.ts";
import { comparePrecedence } from "./precedence.ts";
import type { KindedRoute } from "./rules.ts";
import { translateKindedRules } from "./rules.ts";
import type { Namespace, SecretMeta, Snapshot } from "./snapshot.ts";
import type {
  CompileOptions,
  CompileResult,
  GatewayStatus,
  HTTPRouteStatus,
  ListenerSetStatus,
  ListenerStatus,
  ObjectStatus,
} from "./types.ts";
import { DEFAULT_CONTROLLER_NAME } from "./types.ts";
import { compareStrings } from "./order.ts";

export type * from "./snapshot.ts";
export type * from "./types.ts";
export { DEFAULT_CONTROLLER_NAME } from "./types.ts";
export { emptySnapshot } from "./snapshot.ts";

const EPOCH = "1970-01-01T00:00:00Z";

function keyOf(meta: { namespace?: string; name: string }): string {
  return `${meta.namespace ?? ""}/${meta.name}`;
}

function sortedByKey<T extends { metadata: { namespace?: string; name: string } }>(
  items: readonly T[],
): T[] {
  return [...items].sort((a, b) => compareStrings(keyOf(a.metadata), keyOf(b.metadata)));
}

interface SocketEntries {
  // hostname → entries, for one socket
  hosts: Map<string, RankedEntry[]>;
  // SNI hostname → the TLSRoute serving it through a TLS listener: the oldest, then the first
  // by namespace/name, when several name it
  streams: Map<string, StreamCandidate>;
}

interface StreamCandidate {
  mode: "Passthrough" | "Terminate";
  routeId: string;
  rank: string;
}

export function compile(snapshot: Snapshot, options: CompileOptions = {}): CompileResult {
  const controllerName = options.controllerName ?? DEFAULT_CONTROLLER_NAME;
  const now = options.now ?? EPOCH;
  const statuses: ObjectStatus[] = [];

  // GatewayClasses: ours are the ones naming our controller.
  const acceptedClasses = new Map<string, Problem | undefined>();
  for (const gatewayClass of sortedByKey(snapshot.gatewayClasses)) {
    if (gatewayClass.spec.controllerName !== controllerName) continue;
    const problem = classAcceptance(gatewayClass);
    acceptedClasses.set(gatewayClass.metadata.name, problem);
    const condition = conditionFactory(gatewayClass.metadata.generation, now);
    statuses.push({
      kind: "GatewayClass",
      name: gatewayClass.metadata.name,
      status: {
        conditions: [
          problem
            ? condition("Accepted", false, problem.reason, problem.message)
            : condition("Accepted", true, "Accepted", `handled by ${controllerName}`),
        ],
        ...(problem
          ? {}
          : {
              supportedFeatures: supportedFeatures(options.gatewayApiChannel).map(name => ({
                name,
              })),
            }),
      },
    });
  }

  const grants = sortedByKey(snapshot.referenceGrants);
  const secrets = new Map<string, SecretMeta>(
    snapshot.secrets.map(s => [`${s.metadata.namespace ?? "default"}/${s.metadata.name}`, s]),
  );
  const namespaces = new Map<string, Namespace>(snapshot.namespaces.map(n => [n.metadata.name, n]));
  const caBundles = bundlesByKey(snapshot.caBundles ?? []);
  const ours = sortedByKey(snapshot.gateways).filter(g =>
    acceptedClasses.has(g.spec.gatewayClassName),
  );
  const gatewayModels = buildGateways({
    gateways: ours.filter(g => acceptedClasses.get(g.spec.gatewayClassName) === undefined),
    grants,
    secrets,
    caBundles,
    listenerSets: sortedByKey(snapshot.listenerSets ?? []),
    namespaces,
    defaultAddress: options.defaultAddress ?? "0.0.0.0",
    addressesRequired: options.addressesRequired ?? false,
    ...(options.usableAddresses ? { usableAddresses: new Set(options.usableAddresses) } : {}),
    ...(options.gatewayAddresses
      ? { assignedAddresses: new Map(Object.entries(options.gatewayAddresses)) }
      : {}),
  });
  const gatewayByKey = new Map(gatewayModels.map(m => [m.key, m]));
  const listenerSetByKey = new Map(
    gatewayModels.flatMap(m => m.listenerSets.map(s => [s.key, s] as const)),
  );
  // Our Gateways whose GatewayClass is not accepted: routes naming them get Accepted=False.
  const classNotAccepted = new Map<string, GatewayModel>();
  for (const gateway of ours) {
    if (acceptedClasses.get(gateway.spec.gatewayClassName) === undefined) continue;
    const key = `${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`;
    classNotAccepted.set(key, { gateway, key, address: "", listeners: [], listenerSets: [] });
  }
  const usableBySocket = new Map<string, ListenerModel[]>();
  for (const listener of gatewayModels.flatMap(m =>
    gatewayAccepted(m) && !m.unassigned ? servedListeners(m) : [],
  )) {
    if (listenerUsable(listener))
      usableBySocket.set(listener.socket, [
        ...(usableBySocket.get(listener.socket) ?? []),
        listener,
      ]);
  }

  const tlsPolicies = new BackendTlsPolicies(snapshot.backendTLSPolicies ?? [], caBundles);
  const backends = new BackendResolver(
    sortedByKey(snapshot.services),
    sortedByKey(snapshot.endpointSlices),
    grants,
    tlsPolicies,
  );
  // BackendTLSPolicy → the Gateways whose routes use it (its status ancestors); cluster → the
  // Gateways whose routes send to it (whose backend client certificate it presents)
  const policyGateways = new Map<string, Set<string>>();
  const clusterGateways = new Map<string, Set<string>>();
  const addTo = (map: Map<string, Set<string>>, key: string, gateway: string) =>
    (map.get(key) ?? map.set(key, new Set()).get(key)!).add(gateway);
  const plugins = new PluginIndex(sortedByKey(snapshot.rautaPlugins), {
    ...(snapshot.pluginModules ? { modules: snapshot.pluginModules } : {}),
    ...(options.builtinPluginSchemas ? { builtinSchemas: options.builtinPluginSchemas } : {}),
  });
  const traffic = new TrafficPolicies(sortedByKey(snapshot.backendTrafficPolicies ?? []), {
    gateways: snapshot.gateways,
    httpRoutes: snapshot.httpRoutes,
    grpcRoutes: snapshot.grpcRoutes ?? [],
    services: snapshot.services,
  });
  const security = new SecurityPolicies(
    sortedByKey(snapshot.securityPolicies ?? []),
    {
      gateways: snapshot.gateways,
      httpRoutes: snapshot.httpRoutes,
      grpcRoutes: snapshot.grpcRoutes ?? [],
    },
    { secrets, grants },
  );
  const served = new ServedRoutes();
  const clientPolicies = new ClientPolicies(
    sortedByKey(snapshot.clientTrafficPolicies ?? []),
    snapshot.gateways,
  );
  const sockets = new Map<string, SocketEntries>();

  const kinded: KindedRoute[] = [
    ...sortedByKey(snapshot.httpRoutes).map(route => ({ kind: "HTTPRoute" as const, route })),
    ...sortedByKey(snapshot.grpcRoutes ?? []).map(route => ({ kind: "GRPCRoute" as const, route })),
    ...sortedByKey(snapshot.tlsRoutes ?? []).map(route => ({ kind: "TLSRoute" as const, route })),
  ];
  const attached: AttachedRoute[] = [];
  for (const source of kinded) {
    const attachments = attachRoute(
      source,
      gatewayByKey,
      namespaces,
      classNotAccepted,
      listenerSetByKey,
    );
    if (attachments.length > 0)
      attached.push({ source, key: keyOf(source.route.metadata), attachments });
  }
  resolveKindConflicts(attached);

  for (const { source, attachments } of attached) {
    const { route, kind } = source;
    const translation = translateKindedRules(source, backends, plugins);
    const condition = conditionFactory(route.metadata.generation, now);
    const routeKey = `${route.metadata.namespace ?? "default"}/${route.metadata.name}`;
    const allInvalid = translation.rules.every(rule => rule.dropped);
    const parents: HTTPRouteStatus["status"]["parents"] = [];
    // attachedRoutes counts Routes: two parentRefs selecting one listener count once.
    const countedOn = new Set<ListenerModel>();
    for (const attachment of attachments) {
      const rejected =
        attachment.rejected ??
        (gatewayAccepted(attachment.gateway)
          ? undefined
          : {
              reason: "NoMatchingParent",
              message: `Gateway ${attachment.gateway.key} is not accepted`,
            }) ??
        (allInvalid ? translation.invalid[0] : undefined);
      const conditions = [
        rejected
          ? condition("Accepted", false, rejected.reason, rejected.message)
          : condition(
              "Accepted",
              true,
              "Accepted",
              attachment.parentRef.kind === "ListenerSet"
                ? `attached to ListenerSet ${attachment.parentRef.namespace ?? route.metadata.namespace ?? "default"}/${attachment.parentRef.name} of Gateway ${attachment.gateway.key}`
                : `attached to Gateway ${attachment.gateway.key}`,
            ),
        translation.unresolved.length > 0
          ? condition(
              "ResolvedRefs",
              false,
              translation.unresolved[0]!.reason,
              translation.unresolved.map(p => p.message).join("; "),
            )
          : condition("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
      ];
      if (!allInvalid && translation.invalid.length > 0) {
        // Spec: with the "drop rules" approach the message MUST start with "Dropped Rule".
        conditions.push(
          condition(
            "PartiallyInvalid",
            true,
            translation.invalid[0]!.reason,
            `Dropped Rule${translation.invalid.length > 1 ? "s" : ""}: ${translation.invalid.map(p => p.message).join("; ")}`,
          ),
        );
      }
      parents.push({ parentRef: attachment.parentRef, controllerName, conditions });
      if (rejected) continue;
      for (const policy of translation.tlsPolicies)
        addTo(policyGateways, policy, attachment.gateway.key);
      for (const rule of translation.rules)
        for (const id of routeClusters(rule.route))
          addTo(clusterGateways, id, attachment.gateway.key);
      for (const listener of attachment.allowed) {
        const hostnames = attachment.hostnames.get(listener) ?? [];
        // the config routes this listener serves the rules as (BackendTrafficPolicies), made
        // when a hostname is first served so rules nobody serves stay out of the config
        let ruleIds: string[] | undefined;
        const idsHere = () =>
          (ruleIds ??=
            kind === "TLSRoute"
              ? translation.rules
                  .slice(0, 1)
                  .map(rule => served.serve(rule.route, traffic.effective(null, listener), true))
              : translation.rules.map(rule => {
                  const target = {
                    kind,
                    namespace: route.metadata.namespace ?? "default",
                    name: route.metadata.name,
                    ...(rule.route.source.ruleName ? { ruleName: rule.route.source.ruleName } : {}),
                  };
                  return served.serve(
                    rule.route,
                    traffic.effective(target, listener),
                    false,
                    security.effective(target, listener),
                  );
                }));
        // A route counts on the listeners its hostnames intersect (conformance:
        // HTTPRouteHostnameIntersection), whether or not the listener itself is usable.
        if (hostnames.length === 0) continue;
        if (!countedOn.has(listener)) listener.attachedRoutes++;
        countedOn.add(listener);
        if (!listenerUsable(listener)) continue;
        const sameSocket = usableBySocket.get(listener.socket) ?? [];
        for (const hostname of hostnames) {
          // Listener isolation: a name that a more specific listener on this socket owns is
          // served only by that listener's routes.
          if (owningListener(hostname, sameSocket) !== listener) continue;
          const socket = sockets.get(listener.socket) ?? { hosts: new Map(), streams: new Map() };
          sockets.set(listener.socket, socket);
          if (kind === "TLSRoute") {
            const routeId = idsHere()[0];
            if (routeId === undefined) continue;
            const rank = `${route.metadata.creationTimestamp || "~"} ${routeKey}`;
            const held = socket.streams.get(hostname);
            if (held === undefined || rank < held.rank)
              socket.streams.set(hostname, {
                mode: listener.tlsMode ?? "Terminate",
                routeId,
                rank,
              });
            continue;
          }
          const entries = socket.hosts.get(hostname) ?? [];
          socket.hosts.set(hostname, entries);
          const ids = idsHere();
          for (const [r, rule] of translation.rules.entries()) {
            rule.matches.forEach((match, matchIndex) => {
              const grpc = rule.grpcRanks?.[matchIndex];
              entries.push({
                routeId: ids[r]!,
                match,
                routeCreated: route.metadata.creationTimestamp ?? "",
                routeKey,
                ruleIndex: rule.index,
                matchIndex,
                ...(grpc ? { grpc } : {}),
              });
            });
          }
        }
      }
    }
    statuses.push({
      kind,
      namespace: route.metadata.namespace ?? "default",
      name: route.metadata.name,
      status: { parents },
    });
  }

  const { routes, finalId } = served.finalize();
  const listeners = buildListeners(usableBySocket, sockets, plugins, finalId, clientPolicies);
  statuses.push(...clientPolicies.statuses(controllerName, now));
  for (const model of gatewayModels) {
    statuses.push(gatewayStatus(model, now));
    for (const set of model.listenerSets) statuses.push(listenerSetStatus(set, now));
  }
  for (const gateway of ours.filter(
    g => acceptedClasses.get(g.spec.gatewayClassName) !== undefined,
  )) {
    const condition = conditionFactory(gateway.metadata.generation, now);
    const message = `GatewayClass ${gateway.spec.gatewayClassName} is not accepted`;
    statuses.push({
      kind: "Gateway",
      namespace: gateway.metadata.namespace ?? "default",
      name: gateway.metadata.name,
      status: {
        conditions: [
          condition("Accepted", false, "Invalid", message),
          condition("Programmed", false, "Invalid", message),
        ],
        listeners: [],
      },
    });
  }
  // A plugin is in use only if a served route or listener runs it (a rejected route that
  // names one does not count).
  const usedPlugins = new Set(listeners.flatMap(l => l.plugins));
  for (const route of routes) {
    for (const f of [...route.filters, ...route.backends.flatMap(b => b.filters)])
      if (f.type === "Plugin") usedPlugins.add(f.pluginId);
  }
  plugins.retainUsed(usedPlugins);
  statuses.push(...plugins.statuses(now));

  statuses.push(...tlsPolicies.statuses(policyGateways, controllerName, now));

  const usedClusters = new Set<string>();
  for (const route of routes) for (const id of routeClusters(route)) usedClusters.add(id);
  // A TLS backend presents the client certificate of the Gateway its traffic comes through. The
  // config has one cluster per Service port, so when Gateways with different certificates share
  // one, the first Gateway (namespace/name order) with a certificate decides (docs/control-plane.md).
  for (const cluster of backends.clusters.values()) {
    if (!cluster.tls) continue;
    const certificate = [...(clusterGateways.get(cluster.id) ?? [])]
      .sort(compareStrings)
      .map(key => gatewayByKey.get(key)?.backendClientCertificate)
      .find(ref => ref !== undefined);
    if (certificate) cluster.tls.clientCertificate = certificate;
  }
  // a Service's own policy: the least specific, shapes every cluster of the Service
  const serviceLayer = (c: Cluster) => traffic.serviceSettings(c.service.namespace, c.service.name);
  for (const [id, gateways] of clusterGateways) {
    const cluster = backends.clusters.get(id);
    const layer = cluster && serviceLayer(cluster);
    if (layer) for (const gateway of gateways) traffic.usedThrough(layer.policy, gateway);
  }
  statuses.push(...traffic.statuses(controllerName, now));
  statuses.push(...security.statuses(controllerName, now));
  const body = {
    apiVersion: CONFIG_API_VERSION,
    listeners,
    routes,
    clusters: served.clusters(backends.clusters, usedClusters, serviceLayer),
    plugins: plugins.compiled(),
  } as const;
  return { config: sealConfig(body, options.generation ?? 1), statuses: sortStatuses(statuses) };
}

function routeClusters(route: Route): string[] {
  const ids: string[] = [];
  for (const backend of route.backends) {
    if (backend.clusterId) ids.push(backend.clusterId);
    for (const f of backend.filters) if (f.type === "RequestMirror") ids.push(f.clusterId);
  }
  for (const f of route.filters)
    if (f.type === "RequestMirror" || f.type === "ExternalAuth") ids.push(f.clusterId);
  return ids;
}

function gatewayAccepted(model: GatewayModel): boolean {
  return !model.addressProblem && model.listeners.some(listenerAccepted);
}

function buildListeners(
  usableBySocket: Map<string, ListenerModel[]>,
  sockets: Map<string, SocketEntries>,
  plugins: PluginIndex,
  finalId: (id: string) => string,
  clientPolicies: ClientPolicies,
): Listener[] {
  const result: Listener[] = [];
  for (const [socket, members] of usableBySocket) {
    const https = members.filter(l => l.protocol === "HTTPS");
    const tlsListeners = members.filter(l => l.protocol === "TLS");
    const first = https[0] ?? members[0]!;
    const hosts = sockets.get(socket)?.hosts ?? new Map<string, RankedEntry[]>();
    // Every listener hostname gets a virtual host, even with no routes, so requests for a name
    // owned by a listener without routes get 404 instead of falling through to a wildcard.
    for (const listener of members)
      if (listener.protocol !== "TLS" && !hosts.has(listener.hostname ?? "*"))
        hosts.set(listener.hostname ?? "*", []);
    const streams =
      tlsListeners.length > 0
        ? streamEntries(sockets.get(socket)?.streams ?? new Map(), tlsListeners, https, finalId)
        : undefined;
    const virtualHosts: VirtualHost[] = [...hosts.entries()]
      .sort(([a], [b]) => compareSpecificity(a, b))
      .map(([hostname, entries]) => {
        const seen = new Set<string>();
        return {
          hostname,
          routes: [...entries]
            .sort(comparePrecedence)
            .filter(e => {
              const id = `${e.routeId}#${e.matchIndex}`;
              if (seen.has(id)) return false;
              seen.add(id);
              return true;
            })
            .map(e => ({ routeId: finalId(e.routeId), match: e.match })),
        };
      });
    const sources = members
      .map(l => ({
        namespace: l.gateway.metadata.namespace ?? "default",
        gateway: l.gateway.metadata.name,
        // a ListenerSet's listener names are its own: they may repeat the Gateway's
        listener:
          l.owner.kind === "ListenerSet"
            ? `${l.owner.namespace}/${l.owner.name}/${l.name}`
            : l.name,
      }))
      .sort((a, b) =>
        compareStrings(
          `${a.namespace}/${a.gateway}/${a.listener}`,
          `${b.namespace}/${b.gateway}/${b.listener}`,
        ),
      );
    const pluginIds = new Set(
      sources.flatMap(s => plugins.gatewayPlugins(s.namespace, s.gateway, s.listener)),
    );
    const certificates = members.flatMap(l => l.certificates);
    const protocol = https.length > 0 ? "HTTPS" : tlsListeners.length > 0 ? "TLS" : "HTTP";
    result.push({
      name: socket,
      address: first.address,
      port: first.port,
      protocol,
      ...(protocol !== "HTTP" && certificates.length > 0
        ? {
            tls: {
              certificates,
              // one socket, one handshake policy: the first Gateway listener's (a socket's
              // listeners are one Gateway's port unless Gateways share an address)
              ...(first.clientValidation ? { clientValidation: first.clientValidation } : {}),
            },
          }
        : {}),
      sources,
      plugins: [...pluginIds].sort(),
      ...clientPolicies.forSocket(members, first.port),
      virtualHosts,
      ...(streams ? { streams } : {}),
    });
  }
  return result.sort((a, b) => a.port - b.port || compareStrings(a.address, b.address));
}

// A socket's SNI table: the names TLSRoutes serve, every TLS listener's own name (refused when
// no route serves it, rather than falling through to a wildcard), and the HTTPS listeners'
// names, whose connections go to the HTTPS server. Most specific first.
function streamEntries(
  routed: ReadonlyMap<string, StreamCandidate>,
  tlsListeners: readonly ListenerModel[],
  https: readonly ListenerModel[],
  finalId: (id: string) => string,
): StreamEntry[] {
  const entries = new Map<string, StreamEntry>();
  for (const [hostname, c] of routed)
    entries.set(hostname, { hostname, mode: c.mode, routeId: finalId(c.routeId) });
  for (const l of tlsListeners) {
    const hostname = l.hostname ?? "*";
    if (!entries.has(hostname))
      entries.set(hostname, { hostname, mode: l.tlsMode ?? "Terminate", routeId: null });
  }
  for (const l of https) {
    const hostname = l.hostname ?? "*";
    if (!entries.has(hostname)) entries.set(hostname, { hostname, mode: "HTTP", routeId: null });
  }
  return [...entries.values()].sort((a, b) => compareSpecificity(a.hostname, b.hostname));
}

function gatewayStatus(model: GatewayModel, now: string): GatewayStatus {
  const condition = conditionFactory(model.gateway.metadata.generation, now);
  const attached = model.listenerSets.filter(listenerSetAccepted).length;
  const usable = model.listeners.filter(listenerUsable);
  const broken = model.listeners.filter(l => !listenerUsable(l));
  const listenersMessage = `invalid listeners: ${broken.map(l => l.name).join(", ")}; serving: ${usable.map(l => l.name).join(", ") || "none"}`;
  const accepted = model.addressProblem
    ? condition("Accepted", false, model.addressProblem.reason, model.addressProblem.message)
    : !gatewayAccepted(model)
      ? condition("Accepted", false, "ListenersNotValid", listenersMessage)
      : broken.length > 0
        ? condition("Accepted", true, "ListenersNotValid", listenersMessage)
        : condition("Accepted", true, "Accepted", "all listeners are valid");
  const programmed = model.unassigned
    ? condition("Programmed", false, model.unassigned.reason, model.unassigned.message)
    : accepted.status === "True" && usable.length > 0
      ? condition("Programmed", true, "Programmed", `serving ${usable.length} listener(s)`)
      : condition("Programmed", false, "Invalid", accepted.message);
  return {
    kind: "Gateway",
    namespace: model.gateway.metadata.namespace ?? "default",
    name: model.gateway.metadata.name,
    status: {
      ...(model.reportedAddress
        ? { addresses: [{ type: "IPAddress", value: model.reportedAddress }] }
        : {}),
      conditions: [
        accepted,
        programmed,
        ...(model.listeners.some(l => l.clientValidation?.mode === "AllowInsecureFallback")
          ? [
              condition(
                "InsecureFrontendValidationMode",
                true,
                "ConfigurationChanged",
                "a listener accepts clients without a valid certificate (AllowInsecureFallback)",
              ),
            ]
          : []),
        // Gateway-level references exist only with spec.tls: only then is there one to report
        ...(model.gateway.spec.tls
          ? [
              model.tlsProblem
                ? condition(
                    "ResolvedRefs",
                    false,
                    model.tlsProblem.reason,
                    model.tlsProblem.message,
                  )
                : condition("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
            ]
          : []),
      ],
      listeners: model.listeners.map(listener => listenerStatus(listener, model.gateway, now)),
      ...(attached > 0 ? { attachedListenerSets: attached } : {}),
    },
  };
}

function listenerStatus(
  listener: ListenerModel,
  owner: { metadata: { generation?: number } },
  now: string,
): ListenerStatus {
  const c = conditionFactory(owner.metadata.generation, now);
  const ok = listenerUsable(listener);
  // a conflict says more than an unsupported protocol: a ListenerSet's TCP listener on an HTTP
  // port is reported as the conflict it is
  const notAccepted = listener.conflicted ?? listener.unaccepted;
  return {
    name: listener.name,
    supportedKinds: listener.supportedKinds,
    attachedRoutes: listener.attachedRoutes,
    conditions: [
      notAccepted
        ? c("Accepted", false, notAccepted.reason, notAccepted.message)
        : c("Accepted", true, "Accepted", "listener is valid"),
      listener.conflicted
        ? c("Conflicted", true, listener.conflicted.reason, listener.conflicted.message)
        : c("Conflicted", false, "NoConflicts", "no conflicts"),
      listener.unresolved
        ? c("ResolvedRefs", false, listener.unresolved.reason, listener.unresolved.message)
        : c("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
      // A conflicted listener is not programmed for the conflict's reason (as conformance
      // expects of conflicted ListenerSet listeners); otherwise it is Invalid.
      ok
        ? c("Programmed", true, "Programmed", "listener is serving")
        : c(
            "Programmed",
            false,
            listener.conflicted?.reason ?? "Invalid",
            (notAccepted ?? listener.unresolved)?.message ?? "listener cannot serve",
          ),
    ],
  };
}

// Accepted and Programmed follow its listeners: with one valid listener it is accepted and
// serves; with none, or when its Gateway does not allow it, neither.
function listenerSetStatus(model: ListenerSetModel, now: string): ListenerSetStatus {
  const condition = conditionFactory(model.set.metadata.generation, now);
  const invalid = model.listeners.filter(l => !listenerValid(l));
  const message = model.notAllowed
    ? model.notAllowed.message
    : `invalid listeners: ${invalid.map(l => l.name).join(", ") || "none"}`;
  const gatewayServing = gatewayAccepted(model.gateway) && !model.gateway.unassigned;
  const conditions = model.notAllowed
    ? [
        condition("Accepted", false, "NotAllowed", message),
        condition("Programmed", false, "NotAllowed", message),
      ]
    : !listenerSetAccepted(model)
      ? [
          condition("Accepted", false, "ListenersNotValid", message),
          condition("Programmed", false, "ListenersNotValid", message),
        ]
      : [
          invalid.length > 0
            ? condition("Accepted", true, "ListenersNotValid", message)
            : condition("Accepted", true, "Accepted", "all listeners are valid"),
          gatewayServing
            ? condition(
                "Programmed",
                true,
                "Programmed",
                `attached to Gateway ${model.gateway.key}`,
              )
            : condition(
                "Programmed",
                false,
                "Invalid",
                `Gateway ${model.gateway.key} is not serving`,
              ),
        ];
  return {
    kind: "ListenerSet",
    namespace: model.set.metadata.namespace ?? "default",
    name: model.set.metadata.name,
    status: {
      conditions,
      listeners: model.notAllowed
        ? []
        : model.listeners.map(l => listenerStatus(l, model.set, now)),
    },
  };
}

function sortStatuses(statuses: ObjectStatus[]): ObjectStatus[] {
  const order = {
    GatewayClass: 0,
    Gateway: 1,
    ListenerSet: 2,
    HTTPRoute: 3,
    GRPCRoute: 4,
    TLSRoute: 5,
    RautaPlugin: 6,
    BackendTLSPolicy: 7,
    BackendTrafficPolicy: 8,
    ClientTrafficPolicy: 9,
    SecurityPolicy: 10,
  };
  const key = (s: ObjectStatus) => `${"namespace" in s ? s.namespace : ""}/${s.name}`;
  return [...statuses].sort(
    (a, b) => order[a.kind] - order[b.kind] || compareStrings(key(a), key(b)),
  );
}
