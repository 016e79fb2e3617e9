import { expect } from "chai";
import type { CompiledConfig } from "../../../proxy/config/index.ts";
import type {
  ControlPlaneIO,
  ReconcileOutcome,
  StatusKind,
} from "../../../capabilities/controller/reconciler.ts";
import { Reconciler } from "../../../capabilities/controller/reconciler.ts";
import type { SnapshotKind } from "../../../capabilities/controller/snapshot-store.ts";
import { SnapshotStore } from "../../../capabilities/controller/snapshot-store.ts";

// An in-memory control plane: what was published and written, and a proxy generation the test
// sets. Status writes land back in the store, as the watch would deliver them.
class MemoryIO implements ControlPlaneIO {
  configs: CompiledConfig[] = [];
  statusWrites: Array<{ kind: StatusKind; name: string; status: Record<string, unknown> }> = [];
  loaded: number | undefined;
  failuresLeft = 0;
  published: { generation: number; hash: string } | undefined;
  private readonly store: SnapshotStore;
  constructor(store: SnapshotStore) {
    this.store = store;
  }
  async readPublished() {
    return this.published;
  }
  async publishConfig(config: CompiledConfig) {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error("API server unavailable");
    }
    this.configs.push(config);
  }
  async writeStatus(
    kind: StatusKind,
    namespace: string | undefined,
    name: string,
    status: Record<string, unknown>,
  ) {
    this.statusWrites.push({ kind, name, status });
    const object = this.store.get(kind as SnapshotKind, namespace, name)!;
    this.store.upsert(kind as SnapshotKind, {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(Math.random()) },
      status,
    });
  }
  async proxyGeneration() {
    return this.loaded;
  }
}

function seed(store: SnapshotStore): void {
  store.upsert("GatewayClass", {
    metadata: { name: "rauta", generation: 1 },
    spec: { controllerName: "rauta.io/gateway-controller" },
  });
  store.upsert("Gateway", {
    metadata: { name: "gw", namespace: "default", generation: 1 },
    spec: { gatewayClassName: "rauta", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
  });
  store.upsert("Service", {
    metadata: { name: "echo", namespace: "default" },
    spec: { ports: [{ port: 80 }] },
  });
  store.upsert("HTTPRoute", route("/a"));
}

function route(prefix: string, parents = [{ name: "gw" }], extra: Record<string, unknown> = {}) {
  return {
    metadata: { name: "web", namespace: "default", generation: 1, resourceVersion: prefix },
    spec: {
      parentRefs: parents,
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: prefix } }],
          backendRefs: [{ name: "echo", port: 80 }],
        },
      ],
    },
    ...extra,
  };
}

const conditionOf = (status: Record<string, unknown> | undefined, type: string) =>
  (
    (status?.conditions as Array<{
      type: string;
      status: string;
      reason: string;
      lastTransitionTime: string;
    }>) ?? []
  ).find(c => c.type === type);

function nextOutcome(reconciler: Reconciler): Promise<ReconcileOutcome> {
  return new Promise(resolve => {
    const off = reconciler.onOutcome(outcome => {
      off();
      resolve(outcome);
    });
  });
}

describe("reconciler", () => {
  let clock = 0;
  const now = () =>
    new Date(Date.UTC(2026, 0, 1, 0, 0, clock++)).toISOString().replace(/\.\d+Z$/, "Z");

  it("publishes once per distinct config and writes each status once (idempotent)", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    const first = await reconciler.reconcileOnce();
    expect(first).to.include({ generation: 1, published: true });
    expect(io.statusWrites.map(w => w.kind).sort()).to.deep.equal([
      "Gateway",
      "GatewayClass",
      "HTTPRoute",
    ]);
    const second = await reconciler.reconcileOnce();
    expect(second).to.include({ generation: 1, published: false, statusWrites: 0 });
    expect(io.configs).to.have.length(1);

    store.upsert("HTTPRoute", route("/b"));
    const third = await reconciler.reconcileOnce();
    expect(third).to.include({ generation: 2, published: true });
    expect(io.configs[1]!.listeners[0]!.virtualHosts[0]!.routes[0]!.match.path.value).to.equal(
      "/b",
    );
  });

  it("continues the generation sequence of the config already published (controller restart)", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    io.published = { generation: 41, hash: "sha256:old" };
    expect(await new Reconciler(store, io, { now }).reconcileOnce()).to.include({
      generation: 42,
      published: true,
    });
  });

  it("holds Programmed at Unknown/Pending until the proxy reports the generation, then flips it", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now, ackPollMs: 5 });
    await reconciler.reconcileOnce();
    const gateway = () => store.get("Gateway", "default", "gw")!.status as Record<string, unknown>;
    expect(conditionOf(gateway(), "Programmed")).to.include({
      status: "Unknown",
      reason: "Pending",
    });
    const accepted = conditionOf(gateway(), "Accepted")!.lastTransitionTime;
    io.loaded = 1;
    await reconciler.reconcileOnce();
    expect(conditionOf(gateway(), "Programmed")).to.include({
      status: "True",
      reason: "Programmed",
    });
    // Accepted did not change, so it keeps its transition time.
    expect(conditionOf(gateway(), "Accepted")!.lastTransitionTime).to.equal(accepted);
  });

  it("keeps other controllers' parent statuses and removes ours when the route detaches", async () => {
    const store = new SnapshotStore();
    seed(store);
    const foreign = {
      parentRef: { name: "theirs" },
      controllerName: "example.com/other",
      conditions: [],
    };
    store.upsert(
      "HTTPRoute",
      route("/a2", [{ name: "gw" }, { name: "theirs" }], { status: { parents: [foreign] } }),
    );
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    await reconciler.reconcileOnce();
    const parents = () =>
      (
        store.get("HTTPRoute", "default", "web")!.status as {
          parents: Array<{ controllerName: string }>;
        }
      ).parents;
    expect(parents().map(p => p.controllerName)).to.deep.equal([
      "example.com/other",
      "rauta.io/gateway-controller",
    ]);
    const current = store.get("HTTPRoute", "default", "web")!;
    store.upsert("HTTPRoute", { ...route("/c", [{ name: "theirs" }]), status: current.status });
    await reconciler.reconcileOnce();
    expect(parents().map(p => p.controllerName)).to.deep.equal(["example.com/other"]);
  });

  it("debounces bursts of changes into one compile and retries failures with backoff", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    io.failuresLeft = 2;
    io.loaded = 100;
    const reconciler = new Reconciler(store, io, {
      now,
      debounceMs: 20,
      initialBackoffMs: 10,
      maxBackoffMs: 40,
    });
    const outcome = nextOutcome(reconciler);
    reconciler.start();
    for (let i = 0; i < 20; i++) store.upsert("HTTPRoute", route(`/burst-${i}`));
    const result = await outcome;
    reconciler.stop();
    expect(result.published).to.equal(true);
    expect(io.configs).to.have.length(1);
    expect(io.configs[0]!.listeners[0]!.virtualHosts[0]!.routes[0]!.match.path.value).to.equal(
      "/burst-19",
    );
  });
});

describe("snapshot store", () => {
  it("does not signal a change for status-only updates of Gateway API objects", () => {
    const store = new SnapshotStore();
    let changes = 0;
    store.onChange(() => changes++);
    const route = {
      metadata: { name: "r", namespace: "n", generation: 1, resourceVersion: "1" },
      spec: { rules: [] },
    };
    store.upsert("HTTPRoute", route);
    store.upsert("HTTPRoute", {
      ...route,
      metadata: { ...route.metadata, resourceVersion: "2" },
      status: { parents: [] },
    });
    expect(changes).to.equal(1);
    expect(store.get("HTTPRoute", "n", "r")!.status).to.deep.equal({ parents: [] });
    store.upsert("HTTPRoute", {
      ...route,
      metadata: { ...route.metadata, resourceVersion: "3", generation: 2 },
    });
    store.upsert("HTTPRoute", {
      ...route,
      metadata: { ...route.metadata, resourceVersion: "4", generation: 2, labels: { a: "b" } },
    });
    expect(changes).to.equal(3);
  });
});
