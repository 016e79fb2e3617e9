import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { CompiledConfig } from "../../../proxy/config/index.ts";
import type {
  ControlPlaneIO,
  ReconcileOutcome,
  StatusKind,
} from "../../../capabilities/controller/reconciler.ts";
import { Reconciler } from "../../../capabilities/controller/reconciler.ts";
import type { ConfigMapModuleRef, PluginModule } from "../../../capabilities/compiler/index.ts";
import { PluginModuleSync } from "../../../capabilities/controller/plugin-modules.ts";
import type { ProxyReport } from "../../../capabilities/controller/plugin-status.ts";
import type { KubeObject, SnapshotKind } from "../../../capabilities/controller/snapshot-store.ts";
import { SnapshotStore } from "../../../capabilities/controller/snapshot-store.ts";
import { MemoryConfigMaps, digestOf, wasm } from "./memory-config-maps.ts";
import type { GatewayService } from "../../../capabilities/controller/gateway-services.ts";

// An in-memory control plane: what was published and written, ConfigMaps (plugin modules and
// their copies), and the proxies' heartbeats the test sets. Status writes land back in the
// store, as the watch would deliver them.
class MemoryIO implements ControlPlaneIO {
  configs: CompiledConfig[] = [];
  statusWrites: Array<{ kind: StatusKind; name: string; status: Record<string, unknown> }> = [];
  loaded: number | undefined;
  // when set, the heartbeats; otherwise one proxy serving `loaded`
  reports: ProxyReport[] | undefined;
  failuresLeft = 0;
  // "<kind>/<name>" the API server answers 404 for (deleted without the store hearing of it),
  // or fails to write with a 500
  gone = new Set<string>();
  broken = new Set<string>();
  published: { generation: number; hash: string } | undefined;
  readonly configMaps = new MemoryConfigMaps();
  private readonly modules = new PluginModuleSync(this.configMaps, "rauta-system");
  private readonly store: SnapshotStore;
  constructor(store: SnapshotStore) {
    this.store = store;
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
  async readPublished() {
    return this.published;
  }
  async publishConfig(config: CompiledConfig) {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error("API server unavailable");
    }
    this.configs.push(config);
    this.configMaps.calls.push(`publish ${config.generation}`);
  }
  async writeStatus(
    kind: StatusKind,
    namespace: string | undefined,
    name: string,
    status: Record<string, unknown>,
  ): Promise<"written" | "gone"> {
    if (this.gone.has(`${kind}/${name}`)) return "gone";
    if (this.broken.has(`${kind}/${name}`))
      throw new Error(`apply status of ${kind} ${name}: HTTP 500`);
    this.statusWrites.push({ kind, name, status });
    const object = this.store.get(kind as SnapshotKind, namespace, name)!;
    this.store.upsert(kind as SnapshotKind, {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(Math.random()) },
      status,
    });
    return "written";
  }
  services: GatewayService[][] = [];
  async syncGatewayServices(desired: GatewayService[]) {
    this.services.push(desired);
  }
  async proxies(): Promise<ProxyReport[]> {
    if (this.reports) return this.reports;
    return this.loaded === undefined ? [] : [{ name: "rauta-proxy-a", generation: this.loaded }];
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

// every prefix is a spec of its own: a generation of its own, as the API server would count it
const generations = new Map<string, number>();
function route(prefix: string, parents = [{ name: "gw" }], extra: Record<string, unknown> = {}) {
  if (!generations.has(prefix)) generations.set(prefix, generations.size + 1);
  return {
    metadata: {
      name: "web",
      namespace: "default",
      generation: generations.get(prefix)!,
      resourceVersion: prefix,
    },
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

  it("gives each accepted Gateway its Service with the infrastructure labels and annotations, applied only when they change", async () => {
    const store = new SnapshotStore();
    seed(store);
    store.upsert("Gateway", {
      metadata: { name: "gw", namespace: "default", generation: 2, uid: "u-1" },
      spec: {
        gatewayClassName: "rauta",
        infrastructure: { labels: { team: "web" }, annotations: { owner: "web-team" } },
        listeners: [
          { name: "http", port: 80, protocol: "HTTP" },
          { name: "alt", port: 8080, protocol: "HTTP" },
        ],
      },
    });
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    await reconciler.reconcileOnce();
    expect(io.services).to.have.length(1);
    const [{ service, endpointSlice }] = io.services[0]! as [GatewayService];
    expect(service.metadata).to.deep.include({
      name: "rauta-gw",
      namespace: "default",
      labels: {
        team: "web",
        "gateway.networking.k8s.io/gateway-name": "gw",
        "app.kubernetes.io/managed-by": "rauta",
      },
      annotations: { owner: "web-team" },
    });
    expect(service.metadata!.ownerReferences).to.deep.equal([
      { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", name: "gw", uid: "u-1" },
    ]);
    expect(service.spec!.ports!.map(p => p.port)).to.deep.equal([80, 8080]);
    expect(endpointSlice.metadata!.labels!["kubernetes.io/service-name"]).to.equal("rauta-gw");
    // unchanged: not applied again
    await reconciler.reconcileOnce();
    expect(io.services).to.have.length(1);
    // a Gateway that is not accepted has none
    store.upsert("Gateway", {
      metadata: { name: "gw", namespace: "default", generation: 3, uid: "u-1" },
      spec: {
        gatewayClassName: "rauta",
        infrastructure: { parametersRef: { group: "example.com", kind: "Params", name: "p" } },
        listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      },
    });
    await reconciler.reconcileOnce();
    expect(io.services.at(-1)).to.deep.equal([]);
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

  it("keeps an untouched Gateway Programmed while routes and other Gateways change; a changed one waits", async () => {
    const store = new SnapshotStore();
    seed(store);
    store.upsert("Gateway", {
      metadata: { name: "other", namespace: "default", generation: 1 },
      spec: {
        gatewayClassName: "rauta",
        listeners: [{ name: "http", port: 8080, protocol: "HTTP" }],
      },
    });
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now, ackPollMs: 5 });
    const programmed = (name: string) =>
      conditionOf(
        store.get("Gateway", "default", name)!.status as Record<string, unknown>,
        "Programmed",
      )?.status;
    const first = await reconciler.reconcileOnce();
    io.loaded = first.generation;
    await reconciler.reconcileOnce();
    expect([programmed("gw"), programmed("other")]).to.deep.equal(["True", "True"]);
    // a route change is a new generation the proxy has not loaded: no Gateway's listeners changed
    store.upsert("HTTPRoute", route("/b"));
    const second = await reconciler.reconcileOnce();
    expect(second.generation).to.be.greaterThan(first.generation);
    expect([programmed("gw"), programmed("other")]).to.deep.equal(["True", "True"]);
    // a listener added to `other`: only it waits for the proxy
    store.upsert("Gateway", {
      metadata: { name: "other", namespace: "default", generation: 2 },
      spec: {
        gatewayClassName: "rauta",
        listeners: [
          { name: "http", port: 8080, protocol: "HTTP" },
          { name: "alt", port: 8081, protocol: "HTTP" },
        ],
      },
    });
    const third = await reconciler.reconcileOnce();
    expect([programmed("gw"), programmed("other")]).to.deep.equal(["True", "Unknown"]);
    io.loaded = third.generation;
    await reconciler.reconcileOnce();
    expect(programmed("other")).to.equal("True");
  });

  it("answers an acknowledgement poll from the last compile: Programmed flips without compiling again", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    let compiles = 0;
    const reconciler = new Reconciler(store, io, {
      now,
      ackPollMs: 5,
      compileOptions: () => (compiles++, {}),
    });
    const first = await reconciler.reconcileOnce();
    const published = await reconciler.reconcileOnce(); // candidate moved on: one more compile
    const before = compiles;
    io.loaded = first.generation;
    await reconciler.reconcileOnce();
    await reconciler.reconcileOnce();
    expect(compiles).to.equal(before);
    expect(published.published).to.equal(false);
    const status = store.get("Gateway", "default", "gw")!.status as Record<string, unknown>;
    expect(conditionOf(status, "Programmed")?.status).to.equal("True");
    store.upsert("HTTPRoute", route("/changed"));
    await reconciler.reconcileOnce();
    expect(compiles).to.equal(before + 1);
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

  it("publishes a BackendTrafficPolicy's settings, writes its ancestors beside other controllers', and clears ours when it no longer applies", async () => {
    const store = new SnapshotStore();
    seed(store);
    const foreign = {
      ancestorRef: { group: "gateway.networking.k8s.io", kind: "Gateway", name: "theirs" },
      controllerName: "example.com/other",
      conditions: [],
    };
    const policy = (target: string) => ({
      metadata: { name: "limit", namespace: "default", generation: 1 },
      spec: {
        targetRefs: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: target }],
        rateLimit: { local: { requests: 5, unit: "Second" } },
      },
      status: { ancestors: [foreign] },
    });
    store.upsert("BackendTrafficPolicy", policy("web"));
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    await reconciler.reconcileOnce();
    expect(io.configs.at(-1)!.routes[0]!.rateLimit).to.deep.equal({
      requests: 5,
      intervalMs: 1000,
      burst: 5,
      key: { type: "ClientIP" },
    });
    const ancestors = () =>
      (
        store.get("BackendTrafficPolicy", "default", "limit")!.status as {
          ancestors: Array<{ controllerName: string; conditions: Array<{ reason: string }> }>;
        }
      ).ancestors;
    expect(ancestors().map(a => [a.controllerName, a.conditions[0]?.reason])).to.deep.equal([
      ["example.com/other", undefined],
      ["rauta.io/gateway-controller", "Accepted"],
    ]);
    const retarget = (kind: string, name: string, generation: number) =>
      store.upsert("BackendTrafficPolicy", {
        ...policy(name),
        spec: {
          ...policy(name).spec,
          targetRefs: [{ group: "gateway.networking.k8s.io", kind, name }],
        },
        metadata: { name: "limit", namespace: "default", generation },
        status: store.get("BackendTrafficPolicy", "default", "limit")!.status,
      });
    // retargeted at a route that does not exist: ours says so, the limit is gone
    retarget("HTTPRoute", "elsewhere", 2);
    await reconciler.reconcileOnce();
    expect(ancestors().map(a => [a.controllerName, a.conditions[0]?.reason])).to.deep.equal([
      ["example.com/other", undefined],
      ["rauta.io/gateway-controller", "TargetNotFound"],
    ]);
    expect(io.configs.at(-1)!.routes[0]!.rateLimit).to.equal(undefined);
    // at another controller's Gateway: not ours to judge, our entry goes and theirs stays
    store.upsert("Gateway", {
      metadata: { name: "theirs", namespace: "default", generation: 1 },
      spec: {
        gatewayClassName: "other",
        listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      },
    });
    retarget("Gateway", "theirs", 3);
    await reconciler.reconcileOnce();
    expect(ancestors().map(a => a.controllerName)).to.deep.equal(["example.com/other"]);
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

describe("reconciler: objects the API server no longer has", () => {
  const now = () => "2026-01-01T00:00:00Z";
  const gateway = (name: string) => ({
    metadata: { name, namespace: "default", generation: 1, uid: `uid-${name}` },
    spec: { gatewayClassName: "rauta", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
  });

  it("forgets a Gateway whose status write finds it deleted, writes the other statuses, and compiles again without it", async () => {
    const store = new SnapshotStore();
    seed(store);
    store.upsert("Gateway", gateway("deleted"));
    const io = new MemoryIO(store);
    io.gone.add("Gateway/deleted");
    const reconciler = new Reconciler(store, io, { now });
    const first = await reconciler.reconcileOnce();
    expect(io.statusWrites.map(w => `${w.kind}/${w.name}`)).to.include.members([
      "Gateway/gw",
      "HTTPRoute/web",
    ]);
    expect(store.get("Gateway", "default", "deleted")).to.equal(undefined);
    const second = await reconciler.reconcileOnce();
    expect(second.generation).to.equal(first.generation + 1);
    expect(io.configs.at(-1)!.listeners.flatMap(l => l.sources.map(s => s.gateway))).to.deep.equal([
      "gw",
    ]);
    // the late update event of the deleted object does not bring it back
    store.upsert("Gateway", { ...gateway("deleted"), status: { conditions: [] } });
    expect(store.get("Gateway", "default", "deleted")).to.equal(undefined);
  });

  it("writes every other status when one write fails, then fails the reconcile so it is retried", async () => {
    const store = new SnapshotStore();
    seed(store);
    const io = new MemoryIO(store);
    io.broken.add("GatewayClass/rauta");
    const reconciler = new Reconciler(store, io, { now });
    let failure: unknown;
    await reconciler.reconcileOnce().catch((error: unknown) => (failure = error));
    expect(String(failure))
      .to.contain("1 status write(s) failed")
      .and.contain("GatewayClass rauta");
    expect(io.statusWrites.map(w => w.kind).sort()).to.deep.equal(["Gateway", "HTTPRoute"]);
    io.broken.clear();
    await reconciler.reconcileOnce();
    expect(io.statusWrites.map(w => w.kind)).to.include("GatewayClass");
  });
});

describe("reconciler: RautaPlugins", () => {
  let clock = 0;
  const now = () =>
    new Date(Date.UTC(2026, 0, 2, 0, 0, clock++)).toISOString().replace(/\.\d+Z$/, "Z");
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

  function withPlugin(store: SnapshotStore, spec: Record<string, unknown>): void {
    seed(store);
    store.upsert("RautaPlugin", {
      metadata: { name: "geo", namespace: "default", generation: 1, resourceVersion: "p1" },
      spec: { config: {}, ...spec },
    });
    store.upsert(
      "HTTPRoute",
      route("/geo", [{ name: "gw" }], {
        spec: {
          parentRefs: [{ name: "gw" }],
          rules: [
            {
              filters: [
                {
                  type: "ExtensionRef",
                  extensionRef: { group: "rauta.io", kind: "RautaPlugin", name: "geo" },
                },
              ],
              backendRefs: [{ name: "echo", port: 80 }],
            },
          ],
        },
      }),
    );
  }
  const pluginStatus = (store: SnapshotStore) =>
    store.get("RautaPlugin", "default", "geo")!.status as Record<string, unknown>;

  it("copies a configMap module into the proxies' namespace before the config names it", async () => {
    const store = new SnapshotStore();
    withPlugin(store, { source: { configMap: { name: "modules" } } });
    const io = new MemoryIO(store);
    io.configMaps.put("default", "modules", { binaryData: { "plugin.wasm": b64(wasm("v1")) } });
    await new Reconciler(store, io, { now }).reconcileOnce();

    const digest = digestOf(wasm("v1"));
    const copy = `rauta-plugin-${digest.slice(7, 23)}`;
    expect(io.configs[0]!.plugins).to.deep.include({
      id: "default/geo",
      digest,
      source: { configMap: { namespace: "rauta-system", name: copy, key: "plugin.wasm" } },
      config: {},
      needsBody: false,
      failurePolicy: "FailClosed",
      limits: { memoryMiB: 16, timeoutMs: 50, maxBodyBytes: 1_048_576 },
    });
    // the copy exists before the config that names it is published
    const calls = io.configMaps.calls;
    expect(calls.indexOf(`apply rauta-system/${copy}`)).to.be.lessThan(calls.indexOf("publish 1"));
    expect(pluginStatus(store).digest).to.equal(digest);
    expect(conditionOf(pluginStatus(store), "Accepted")).to.include({ status: "True" });
  });

  it("re-copies a changed module, and deletes the old copy once the config moved on", async () => {
    const store = new SnapshotStore();
    withPlugin(store, { source: { configMap: { name: "modules" } } });
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    io.configMaps.put("default", "modules", { binaryData: { "plugin.wasm": b64(wasm("v1")) } });
    store.upsert("ConfigMap", io.configMaps.maps.get("default/modules") as KubeObject);
    await reconciler.reconcileOnce();

    io.configMaps.put("default", "modules", { binaryData: { "plugin.wasm": b64(wasm("v2")) } });
    store.upsert("ConfigMap", io.configMaps.maps.get("default/modules") as KubeObject);
    await reconciler.reconcileOnce();

    const v2 = `rauta-plugin-${digestOf(wasm("v2")).slice(7, 23)}`;
    expect(io.configs.map(c => c.plugins[0]!.digest)).to.deep.equal([
      digestOf(wasm("v1")),
      digestOf(wasm("v2")),
    ]);
    expect([...io.configMaps.maps.keys()].filter(k => k.startsWith("rauta-system/"))).to.deep.equal(
      [`rauta-system/${v2}`],
    );
    const calls = io.configMaps.calls;
    expect(calls.findIndex(c => c.startsWith("delete"))).to.be.greaterThan(
      calls.indexOf("publish 2"),
    );
  });

  it("says SourceNotFound while the ConfigMap is missing, and recovers when it appears", async () => {
    const store = new SnapshotStore();
    withPlugin(store, { source: { configMap: { name: "modules", key: "geo.wasm" } } });
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now });
    let changes = 0;
    store.onChange(() => changes++);
    await reconciler.reconcileOnce();
    expect(conditionOf(pluginStatus(store), "Accepted")).to.include({
      status: "False",
      reason: "SourceNotFound",
    });
    expect(conditionOf(pluginStatus(store), "Ready")).to.include({
      status: "False",
      reason: "SourceNotFound",
    });
    // a ConfigMap no plugin names is not a change; the one it names is
    const before = changes;
    store.upsert("ConfigMap", {
      metadata: { name: "unrelated", namespace: "default", resourceVersion: "1" },
    });
    expect(changes).to.equal(before);
    io.configMaps.put("default", "modules", { binaryData: { "geo.wasm": b64(wasm()) } });
    store.upsert("ConfigMap", io.configMaps.maps.get("default/modules") as KubeObject);
    expect(changes).to.be.greaterThan(before);
    await reconciler.reconcileOnce();
    expect(conditionOf(pluginStatus(store), "Accepted")).to.include({ status: "True" });
  });

  it("says DigestMismatch when the module is not the one spec.digest pins", async () => {
    const store = new SnapshotStore();
    withPlugin(store, {
      source: { configMap: { name: "modules" } },
      digest: `sha256:${"9".repeat(64)}`,
    });
    const io = new MemoryIO(store);
    io.configMaps.put("default", "modules", { binaryData: { "plugin.wasm": b64(wasm()) } });
    await new Reconciler(store, io, { now }).reconcileOnce();
    expect(conditionOf(pluginStatus(store), "Accepted")).to.include({
      status: "False",
      reason: "DigestMismatch",
    });
    expect(pluginStatus(store).digest).to.equal(digestOf(wasm()));
    expect(io.configs[0]!.plugins).to.deep.equal([]);
  });

  it("turns the proxies' heartbeats into Ready: pending, then loaded, then the proxy that failed", async () => {
    const store = new SnapshotStore();
    withPlugin(store, { source: { builtin: "rate-limit" }, config: { requestsPerSecond: 5 } });
    const io = new MemoryIO(store);
    const reconciler = new Reconciler(store, io, { now, ackPollMs: 60_000 });
    io.reports = [{ name: "rauta-proxy-a", generation: 0 }];
    await reconciler.reconcileOnce();
    expect(conditionOf(pluginStatus(store), "Ready")).to.include({
      status: "Unknown",
      reason: "Pending",
    });

    io.reports = [{ name: "rauta-proxy-a", generation: 1 }];
    await reconciler.reconcileOnce();
    expect(conditionOf(pluginStatus(store), "Ready")).to.include({
      status: "True",
      reason: "Loaded",
    });

    io.reports = [
      {
        name: "rauta-proxy-a",
        generation: 1,
        plugins: {
          generation: 1,
          problems: [
            {
              plugin: "default/geo",
              reason: "LoadFailed",
              message: "the module does not instantiate",
            },
          ],
        },
      },
    ];
    await reconciler.reconcileOnce();
    const failed = conditionOf(pluginStatus(store), "Ready") as {
      status: string;
      reason: string;
      message?: string;
    };
    expect(failed).to.include({
      status: "False",
      reason: "LoadFailed",
      message: "proxy rauta-proxy-a: LoadFailed: the module does not instantiate",
    });

    // an unrelated change publishes generation 2, but the plugin's version dates from 1: a
    // proxy still on 1 keeps counting for it
    const other = route("/other");
    store.upsert("HTTPRoute", { ...other, metadata: { ...other.metadata, name: "other" } });
    io.reports = [{ name: "rauta-proxy-a", generation: 1 }];
    expect(await reconciler.reconcileOnce()).to.include({ generation: 2, published: true });
    expect(conditionOf(pluginStatus(store), "Ready")).to.include({ status: "True" });
  });
});

describe("snapshot store", () => {
  it("ignores an update event that arrives after its object's delete event, but not the object created again", () => {
    const store = new SnapshotStore();
    const route = (uid: string, resourceVersion: string) => ({
      metadata: { name: "r", namespace: "n", generation: 1, uid, resourceVersion },
      spec: { rules: [] },
    });
    store.upsert("HTTPRoute", route("a", "1"));
    store.remove("HTTPRoute", route("a", "2"));
    store.upsert("HTTPRoute", route("a", "2"));
    expect(store.get("HTTPRoute", "n", "r")).to.equal(undefined);
    store.upsert("HTTPRoute", route("b", "3"));
    expect(store.get("HTTPRoute", "n", "r")?.metadata?.uid).to.equal("b");
  });

  it("replace() removes what a full list no longer has, but keeps what a watch delivered during the list", () => {
    const store = new SnapshotStore();
    const object = (name: string) => ({ metadata: { name, namespace: "n", uid: name } });
    store.upsert("Service", object("kept"));
    store.upsert("Service", object("deleted-unseen"));
    const since = store.mark();
    store.upsert("Service", object("created-during-list"));
    store.replace("Service", [object("kept"), object("new")], since);
    expect(
      store
        .list("Service")
        .map(s => s.metadata?.name)
        .sort(),
    ).to.deep.equal(["created-during-list", "kept", "new"]);
  });

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

  it("keeps a ConfigMap's ca.crt as a parsed CA bundle, a change only once a BackendTLSPolicy or a Gateway names it", () => {
    const store = new SnapshotStore();
    let changes = 0;
    store.onChange(() => changes++);
    const pem = readFileSync(
      new URL("../../fixtures/compiler/backend-tls-policy/input.yaml", import.meta.url),
      "utf8",
    )
      .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)![0]
      .replace(/\n\s+/g, "\n");
    const configMap = (version: string, caCrt: string) => ({
      metadata: { name: "ca", namespace: "n", resourceVersion: version },
      data: { "ca.crt": caCrt, other: "kept out" },
    });
    store.upsert("ConfigMap", configMap("1", pem));
    expect(changes).to.equal(0);
    expect(store.snapshot().caBundles).to.deep.equal([
      {
        metadata: { name: "ca", namespace: "n", resourceVersion: "1" },
        certificates: new X509Certificate(pem).toString(),
      },
    ]);
    store.upsert("BackendTLSPolicy", {
      metadata: { name: "p", namespace: "n", generation: 1, resourceVersion: "1" },
      spec: {
        targetRefs: [{ group: "", kind: "Service", name: "s" }],
        validation: {
          caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "ca" }],
          hostname: "s.example.com",
        },
      },
    });
    expect(changes).to.equal(1);
    store.upsert("ConfigMap", configMap("2", "not a certificate"));
    expect(changes).to.equal(2);
    expect(store.snapshot().caBundles![0]!.problem).to.equal("ca.crt holds no PEM certificate");
    expect(JSON.stringify(store.list("ConfigMap"))).not.to.contain("kept out");
    store.remove("ConfigMap", configMap("2", ""));
    expect(changes).to.equal(3);
    expect(store.snapshot().caBundles).to.deep.equal([]);
    // a Gateway's client-certificate validation names CA ConfigMaps too
    store.upsert("Gateway", {
      metadata: { name: "gw", namespace: "n", generation: 1, resourceVersion: "1" },
      spec: {
        tls: {
          frontend: {
            default: { validation: { caCertificateRefs: [{ kind: "ConfigMap", name: "front" }] } },
          },
        },
      },
    });
    expect(changes).to.equal(4);
    store.upsert("ConfigMap", {
      metadata: { name: "front", namespace: "n", resourceVersion: "1" },
      data: { "ca.crt": pem },
    });
    expect(changes).to.equal(5);
  });
});
