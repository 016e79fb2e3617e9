// Shared wiring of the capabilities: one snapshot store and one reconciler per controller
// process, fed by every capability's watch bindings. Pepr registers watch bindings only in the
// watcher pod (and `pepr dev`), so the reconciler starts there and nowhere else.
import type { GenericClass } from "kubernetes-fluent-client";
import { randomUUID } from "node:crypto";
import { K8s, Log, a } from "pepr";
import type { Capability, PeprValidateRequest } from "pepr";
import type { Gateway } from "./compiler/index.ts";
import { DEFAULT_CONTROLLER_NAME } from "./compiler/index.ts";
import type { GatewayApiChannel } from "./compiler/features.ts";
import { assignAddresses, parsePool } from "./controller/addresses.ts";
import { channelOf, HTTPROUTE_CRD } from "./controller/api-channel.ts";
import { KubernetesIO } from "./controller/kubernetes-io.ts";
import { LeaderElector } from "./controller/leader.ts";
import { Reconciler } from "./controller/reconciler.ts";
import type { KubeObject, StoreKind } from "./controller/snapshot-store.ts";
import { SnapshotStore } from "./controller/snapshot-store.ts";
import {
  BackendTLSPolicy,
  BackendTrafficPolicy,
  ClientTrafficPolicy,
  SecurityPolicy,
  ListenerSet,
  Gateway as GatewayModel,
  GatewayClass,
  GRPCRoute,
  HTTPRoute,
  RautaPlugin,
  TLSRoute,
  ReferenceGrant,
} from "./kinds.ts";

export const CONTROLLER_NAME = process.env.RAUTA_CONTROLLER_NAME ?? DEFAULT_CONTROLLER_NAME;
export const RAUTA_NAMESPACE = process.env.RAUTA_NAMESPACE ?? "rauta-system";

let controlPlane: { store: SnapshotStore; reconciler: Reconciler } | undefined;
let gatewayApiChannel: GatewayApiChannel = "standard";

const LISTED: Array<[StoreKind, GenericClass]> = [
  ["GatewayClass", GatewayClass],
  ["Gateway", GatewayModel],
  ["HTTPRoute", HTTPRoute],
  ["GRPCRoute", GRPCRoute],
  ["TLSRoute", TLSRoute],
  ["ReferenceGrant", ReferenceGrant],
  ["RautaPlugin", RautaPlugin],
  ["BackendTLSPolicy", BackendTLSPolicy],
  ["BackendTrafficPolicy", BackendTrafficPolicy],
  ["ClientTrafficPolicy", ClientTrafficPolicy],
  ["SecurityPolicy", SecurityPolicy],
  ["ListenerSet", ListenerSet],
  ["Service", a.Service],
  ["EndpointSlice", a.EndpointSlice],
  ["Secret", a.Secret],
  ["Namespace", a.Namespace],
  // CA bundles of BackendTLSPolicies (the store keeps names, versions and parsed ca.crt only)
  ["ConfigMap", a.ConfigMap],
];

// Read by each new leader: switching CRD channels means a redeploy or a failover anyway. Not
// allowed to read the CRD (RBAC trimmed by hand) → standard, so nothing is claimed that the
// API server might prune.
async function readChannel(): Promise<GatewayApiChannel> {
  try {
    return channelOf(await K8s(a.CustomResourceDefinition).Get(HTTPROUTE_CRD));
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status !== 403 && status !== 404) throw error;
    Log.warn(
      { status, crd: HTTPROUTE_CRD },
      "cannot read the HTTPRoute CRD; assuming the standard channel",
    );
    return "standard";
  }
}

// Each Pepr watch lists and then streams on its own schedule, so right after start-up the store
// may hold Gateways but not yet their routes. Publishing a compile of that would drop live
// routes; a new leader therefore lists every kind itself before its first reconcile. The list
// also removes what a standby's watches missed being deleted.
async function primeStore(store: SnapshotStore): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      gatewayApiChannel = await readChannel();
      for (const [kind, model] of LISTED) {
        const since = store.mark();
        const list = await K8s(model).Get();
        store.replace(kind, list.items as unknown as KubeObject[], since);
      }
      return;
    } catch (error) {
      const delay = Math.min(30_000, 500 * 2 ** attempt);
      Log.warn(
        { error: String(error), attempt, retryInMs: delay },
        "listing objects before the first reconcile failed; retrying",
      );
      await new Promise(resolve => setTimeout(resolve, delay));
    }
  }
}

export function getControlPlane(): { store: SnapshotStore; reconciler: Reconciler } {
  if (!controlPlane) {
    const store = new SnapshotStore();
    const pool = parsePool(process.env.RAUTA_ADDRESS_POOL ?? "");
    const reconciler = new Reconciler(store, new KubernetesIO({ namespace: RAUTA_NAMESPACE }), {
      controllerName: CONTROLLER_NAME,
      debounceMs: Number(process.env.RAUTA_DEBOUNCE_MS ?? 5),
      compileOptions: s => ({
        gatewayAddresses: assignAddresses(s.list("Gateway") as unknown as Gateway[], pool),
        // with a pool, a Gateway the pool cannot serve waits (AddressNotAssigned); without one
        // every Gateway binds the proxies' wildcard address
        addressesRequired: pool.length > 0,
        // the pool is what the proxies' nodes carry: a static address outside it is not usable
        ...(pool.length > 0 ? { usableAddresses: pool } : {}),
        gatewayApiChannel,
      }),
      log: (level, message, fields) => Log[level]({ ...fields }, message),
    });
    // Every replica keeps its store current; only the Lease holder reconciles and writes.
    const elector = new LeaderElector({
      namespace: RAUTA_NAMESPACE,
      name: "rauta-controller",
      identity: `${process.env.HOSTNAME ?? "controller"}-${randomUUID().slice(0, 8)}`,
      onChange: leader => {
        Log.info(
          { leader },
          leader ? "became leader: listing, then reconciling" : "not the leader: standing by",
        );
        if (!leader) reconciler.stop();
        else
          void primeStore(store).then(() => {
            if (elector.isLeader) reconciler.start();
          });
      },
      log: (message, fields) => Log.warn(fields, message),
    });
    elector.start();
    controlPlane = { store, reconciler };
  }
  return controlPlane;
}

type When = Capability["When"];
type Verdict = string[] | { problems: string[]; warnings: string[] };
type Validator<T> = (object: T) => Promise<Verdict> | Verdict;

// Feeds one kind into the snapshot store, optionally with admission validation: the callback
// returns the problems (and warnings kubectl shows); any problem denies the request with all
// messages (HTTP 422).
export function watchKind<T extends GenericClass>(
  When: When,
  model: T,
  kind: StoreKind,
  validate?: Validator<InstanceType<T>>,
): void {
  const upsert = (object: InstanceType<T>) =>
    getControlPlane().store.upsert(kind, object as unknown as KubeObject);
  const remove = (object: InstanceType<T>) =>
    getControlPlane().store.remove(kind, object as unknown as KubeObject);
  const binding = When(model).IsCreatedOrUpdated();
  if (validate) {
    binding
      .Validate(async (request: PeprValidateRequest<InstanceType<T>>) => {
        const verdict = await validate(request.Raw);
        const { problems, warnings } = Array.isArray(verdict)
          ? { problems: verdict, warnings: [] }
          : verdict;
        const shown = warnings.length > 0 ? warnings : undefined;
        return problems.length > 0
          ? request.Deny(problems.join("\n"), 422, shown)
          : request.Approve(shown);
      })
      .Watch(upsert);
  } else {
    binding.Watch(upsert);
  }
  When(model).IsDeleted().Watch(remove);
}
