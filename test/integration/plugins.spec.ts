// RautaPlugins end to end on hack/cluster, with the controller and the proxy as
// control-plane-dev.spec.ts runs them (`npx pepr dev`, and `rauta proxy` as a local process with
// two workers serving Gateways on 127.0.0.200/.201): a plugin from each source kind (builtin,
// inline, configMap, url) changes traffic as specified, attached by an ExtensionRef filter, by
// the rauta.io/plugins annotation and by targetRefs on a Gateway; config and module changes
// reach the data plane within seconds under load without failing a request; a module that does
// not load leaves the previous version serving and is reported in status; admission refuses
// what can never load.
import { expect } from "chai";
import type { Cluster } from "./helpers/cluster.ts";
import { eventually, uniqueNamespace } from "./helpers/cluster.ts";
import type { DevControlPlane } from "./helpers/dev-control-plane.ts";
import { startDevControlPlane } from "./helpers/dev-control-plane.ts";
import type { ModuleServer, Sample } from "./helpers/plugins.ts";
import {
  base64,
  echoedHeader,
  hs256Token,
  loadLoop,
  propagation,
  rejecting,
  serveModule,
  settingHeader,
  sha256,
  wasmModule,
} from "./helpers/plugins.ts";
import { echoApp, httpGet } from "./helpers/workloads.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
interface Status {
  metadata: { generation?: number };
  status?: { addresses?: Array<{ value: string }>; conditions?: Condition[]; digest?: string };
}
interface RouteStatus {
  status?: { parents?: Array<{ controllerName: string; conditions: Condition[] }> };
}
interface ConfigMap {
  metadata: { name: string; annotations?: Record<string, string> };
  binaryData?: Record<string, string>;
}

const condition = (conditions: Condition[] | undefined, type: string) =>
  conditions?.find(c => c.type === type);

const GATEWAY_ADDRESSES = ["127.0.0.200", "127.0.0.201"];
// Where the test serves url-source modules: the proxy is a local process, so loopback reaches it.
const MODULE_SERVER_ADDRESS = "127.0.0.1";
const JWT_SECRET = "integration-secret-of-at-least-32-bytes!";
const ISSUER = "https://id.example.com";

describe("RautaPlugin end to end (pepr dev + local proxy on hack/cluster)", function () {
  this.timeout(10 * 60_000);
  const ns = uniqueNamespace("it-plugins");
  let cp: DevControlPlane;
  let k: Cluster;
  let moduleServer: ModuleServer | undefined;
  const address: Record<"gw" | "edge", string> = { gw: "", edge: "" };

  const get = (gateway: "gw" | "edge", host: string, path = "/", headers = {}) =>
    httpGet(address[gateway], 80, host, path, headers);
  const plugin = (name: string) => k.getJson<Status>(["rautaplugin", name, "-n", ns]);
  const pluginCondition = (name: string, type: string) =>
    condition(plugin(name).status?.conditions, type);
  const routeCondition = (name: string, type: string) =>
    condition(
      k
        .getJson<RouteStatus>(["httproute", name, "-n", ns])
        .status?.parents?.find(p => p.controllerName === "rauta.io/gateway-controller")?.conditions,
      type,
    );
  /** Ready of the plugin's current generation, once it has this status. */
  const readyAs = (name: string, status: string, reason: string, timeoutMs = 60_000) =>
    eventually(`RautaPlugin ${name} Ready=${status} (${reason})`, timeoutMs, () => {
      const p = plugin(name);
      const ready = condition(p.status?.conditions, "Ready");
      return ready?.status === status &&
        ready.reason === reason &&
        ready.observedGeneration === p.metadata.generation
        ? p
        : undefined;
    });
  const patchPlugin = (name: string, spec: Record<string, unknown>) =>
    k.kubectl([
      "patch",
      "rautaplugin",
      name,
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({ spec }),
    ]);
  // With failure messages: what the controller and the proxy said.
  const withLogs = <T>(p: Promise<T>) =>
    p.catch((error: unknown) => {
      throw new Error(`${String(error)}\n${cp.logs()}`);
    });

  before(async () => {
    cp = await startDevControlPlane({ addresses: GATEWAY_ADDRESSES });
    k = cp.k;
    k.kubectl(["create", "namespace", ns]);
    k.apply(
      `${echoApp("echo")}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
`,
      ns,
    );
    for (const name of ["gw", "edge"] as const) {
      address[name] = await withLogs(
        eventually(`Gateway ${name} Programmed with a pool address`, 180_000, () => {
          const s = k.getJson<Status>(["gateway", name, "-n", ns]).status;
          const value = s?.addresses?.[0]?.value;
          return condition(s?.conditions, "Programmed")?.status === "True" &&
            value &&
            GATEWAY_ADDRESSES.includes(value)
            ? value
            : undefined;
        }),
      );
    }
    expect(address.gw).to.not.equal(address.edge);
  });

  after(async () => {
    k?.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
    await moduleServer?.close();
    await cp?.stop();
  });

  describe("a plugin from each source kind changes traffic", () => {
    it("builtin request-transformer, attached by an ExtensionRef filter: the backend sees the header it sets", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: add-header}
spec:
  source: {builtin: request-transformer}
  config: {set: [{name: x-plugin, value: "set by request-transformer"}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: transform}
spec:
  parentRefs: [{name: gw}]
  hostnames: [transform.example.com]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: rauta.io, kind: RautaPlugin, name: add-header}
    backendRefs: [{name: echo, port: 8080}]
`,
        ns,
      );
      const response = await withLogs(
        eventually("the transformed request at the echo pod", 120_000, async () => {
          const r = await get("gw", "transform.example.com", "/t");
          return r.status === 200 && echoedHeader(r.body, "x-plugin") ? r : undefined;
        }),
      );
      expect(echoedHeader(response.body, "x-plugin")).to.equal("set by request-transformer");
      expect((JSON.parse(response.body) as { namespace: string }).namespace).to.equal(ns);
      expect(routeCondition("transform", "ResolvedRefs")).to.include({ status: "True" });
      expect(pluginCondition("add-header", "Accepted")).to.include({
        status: "True",
        reason: "Accepted",
        message: "plugin is valid and attached",
      });
      const ready = await withLogs(readyAs("add-header", "True", "Loaded"));
      expect(condition(ready.status?.conditions, "Ready")?.message).to.equal("loaded by 1 proxy");
    });

    it("builtin jwt-auth, attached by the rauta.io/plugins annotation: 401 without a token, 200 with an HS256 token", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: auth}
spec:
  source: {builtin: jwt-auth}
  config:
    keys: [{alg: HS256, secret: "${JWT_SECRET}"}]
    issuer: ${ISSUER}
    realm: orders
    claimsToHeaders: [{claim: sub, header: x-user}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: secured
  annotations: {rauta.io/plugins: auth}
spec:
  parentRefs: [{name: gw}]
  hostnames: [secured.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
        ns,
      );
      const anonymous = await withLogs(
        eventually("401 from jwt-auth", 120_000, async () => {
          const r = await get("gw", "secured.example.com", "/orders");
          return r.status === 401 ? r : undefined;
        }),
      );
      expect(anonymous.headers["www-authenticate"]).to.equal('Bearer realm="orders"');
      expect(JSON.parse(anonymous.body)).to.deep.equal({
        error: "missing_token",
        error_description: "no bearer token",
      });
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: "alice", iss: ISSUER, iat: now, exp: now + 600 };
      const forged = await get("gw", "secured.example.com", "/orders", {
        authorization: `Bearer ${hs256Token("another-secret", claims)}`,
      });
      expect(forged.status).to.equal(401);
      expect(forged.headers["www-authenticate"]).to.equal(
        'Bearer realm="orders", error="invalid_token", error_description="invalid signature"',
      );
      const signed = await get("gw", "secured.example.com", "/orders", {
        authorization: `Bearer ${hs256Token(JWT_SECRET, claims)}`,
      });
      expect(signed.status, signed.body).to.equal(200);
      expect(echoedHeader(signed.body, "x-user")).to.equal("alice");
      expect(pluginCondition("auth", "Accepted")).to.include({ status: "True" });
      await withLogs(readyAs("auth", "True", "Loaded"));
    });

    it("a rule protected by jwt-auth cannot be reached through another rule's prefix (paths are normalized before matching)", async () => {
      // issue #11: "/public/../admin" used to match /public and reach the backend unauthenticated
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: paths}
spec:
  parentRefs: [{name: gw}]
  hostnames: [paths.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /admin}}]
      filters:
        - {type: ExtensionRef, extensionRef: {group: rauta.io, kind: RautaPlugin, name: auth}}
      backendRefs: [{name: echo, port: 8080}]
    - matches: [{path: {type: PathPrefix, value: /public}}]
      backendRefs: [{name: echo, port: 8080}]
`,
        ns,
      );
      await withLogs(
        eventually("/admin protected", 120_000, async () => {
          const r = await get("gw", "paths.example.com", "/admin/keys");
          return r.status === 401 ? r : undefined;
        }),
      );
      expect((await get("gw", "paths.example.com", "/public/index.html")).status).to.equal(200);
      for (const sneaky of [
        "/public/../admin/keys",
        "/public/%2e%2e/admin/keys",
        "/public/./../admin",
        "//admin/keys",
      ]) {
        const r = await get("gw", "paths.example.com", sneaky);
        expect(r.status, `${sneaky}: ${r.body}`).to.equal(401);
      }
      // an escaped slash is not decoded into a separator behind the router's back: redirect
      const escaped = await get("gw", "paths.example.com", "/public%2F..%2Fadmin/keys");
      expect(escaped.status).to.equal(307);
    });

    const teapot = rejecting(418, "short and stout", [["x-teapot", ns]]);

    it("inline module, attached by an ExtensionRef filter: answers 418 itself; status.digest is its sha256", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: teapot}
spec:
  source: {inline: ${base64(teapot)}}
  limits: {memoryMiB: 1}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: teapot}
spec:
  parentRefs: [{name: gw}]
  hostnames: [teapot.example.com]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: rauta.io, kind: RautaPlugin, name: teapot}
    backendRefs: [{name: echo, port: 8080}]
`,
        ns,
      );
      const response = await withLogs(
        eventually("418 from the inline module", 120_000, async () => {
          const r = await get("gw", "teapot.example.com", "/brew");
          return r.status === 418 ? r : undefined;
        }),
      );
      expect(response.body).to.equal("short and stout");
      expect(response.headers["x-teapot"]).to.equal(ns);
      const ready = await withLogs(readyAs("teapot", "True", "Loaded"));
      expect(ready.status?.digest).to.equal(sha256(teapot));
      expect(condition(ready.status?.conditions, "Accepted")).to.include({ status: "True" });
    });

    const fromConfigMap = settingHeader("x-module", `configmap ${ns}`);
    const copyName = `rauta-plugin-${sha256(fromConfigMap).slice("sha256:".length, "sha256:".length + 16)}`;

    it("configMap module, attached by the rauta.io/plugins annotation: copied into rauta-system as rauta-plugin-<hex16>", async () => {
      k.apply(
        `
apiVersion: v1
kind: ConfigMap
metadata: {name: modules}
binaryData: {header.wasm: ${base64(fromConfigMap)}}
---
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: from-configmap}
spec:
  source: {configMap: {name: modules, key: header.wasm}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: configmap
  annotations: {rauta.io/plugins: from-configmap}
spec:
  parentRefs: [{name: gw}]
  hostnames: [configmap.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
        ns,
      );
      const response = await withLogs(
        eventually("the header the configMap module sets, at the echo pod", 120_000, async () => {
          const r = await get("gw", "configmap.example.com", "/");
          return r.status === 200 && echoedHeader(r.body, "x-module") ? r : undefined;
        }),
      );
      expect(echoedHeader(response.body, "x-module")).to.equal(`configmap ${ns}`);
      const ready = await withLogs(readyAs("from-configmap", "True", "Loaded"));
      expect(ready.status?.digest).to.equal(sha256(fromConfigMap));
      const copy = k.getJson<ConfigMap>(["configmap", copyName, "-n", "rauta-system"]);
      expect(copy.metadata.annotations?.["rauta.io/digest"]).to.equal(sha256(fromConfigMap));
      expect(copy.binaryData?.["plugin.wasm"]).to.equal(base64(fromConfigMap));
    });

    it("configMap module: once no RautaPlugin uses the module, its copy is deleted (and the route fails closed)", async () => {
      k.kubectl(["delete", "rautaplugin", "from-configmap", "-n", ns]);
      const unresolved = await withLogs(
        eventually("the route to report the missing plugin", 60_000, () => {
          const c = routeCondition("configmap", "ResolvedRefs");
          return c?.status === "False" ? c : undefined;
        }),
      );
      expect(unresolved).to.include({ reason: "PluginNotFound" });
      // a rule whose plugin is gone fails closed rather than skipping it
      await withLogs(
        eventually("HTTP 500 for the route whose plugin is gone", 30_000, async () =>
          (await get("gw", "configmap.example.com", "/")).status === 500 ? true : undefined,
        ),
      );
      await withLogs(
        eventually(`ConfigMap rauta-system/${copyName} to be deleted`, 60_000, () =>
          k.kubectlResult(["get", "configmap", copyName, "-n", "rauta-system"]).code !== 0
            ? true
            : undefined,
        ),
      );
    });

    it("url module pinned by sha256, targeting Gateway edge through targetRefs: every route of edge runs it, gw's do not", async () => {
      const fromUrl = settingHeader("x-from-url", `url ${ns}`);
      moduleServer = await serveModule(MODULE_SERVER_ADDRESS, `${ns}.wasm`, fromUrl);
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: from-url}
spec:
  source: {url: {url: "${moduleServer.url}", sha256: "${sha256(fromUrl)}"}}
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge-web}
spec:
  parentRefs: [{name: edge}]
  hostnames: [edge.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
        ns,
      );
      const response = await withLogs(
        eventually("the header the url module sets, on Gateway edge", 120_000, async () => {
          const r = await get("edge", "edge.example.com", "/");
          return r.status === 200 && echoedHeader(r.body, "x-from-url") ? r : undefined;
        }),
      );
      expect(echoedHeader(response.body, "x-from-url")).to.equal(`url ${ns}`);
      expect(moduleServer.downloads()).to.be.at.least(1);
      const other = await get("gw", "transform.example.com", "/");
      expect(other.status).to.equal(200);
      expect(echoedHeader(other.body, "x-from-url")).to.equal(undefined);
      const ready = await withLogs(readyAs("from-url", "True", "Loaded"));
      expect(ready.status?.digest).to.equal(sha256(fromUrl));
      expect(condition(ready.status?.conditions, "Accepted")).to.include({
        status: "True",
        message: "plugin is valid and attached",
      });
    });
  });

  describe("hot reload under load", () => {
    it("a config change, then a new module, reach every request within seconds; no request fails", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: live}
spec:
  source: {builtin: request-transformer}
  config: {set: [{name: x-live, value: config-v1}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: live}
spec:
  parentRefs: [{name: gw}]
  hostnames: [live.example.com]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: rauta.io, kind: RautaPlugin, name: live}
    backendRefs: [{name: echo, port: 8080}]
`,
        ns,
      );
      await withLogs(
        eventually("config-v1 at the echo pod", 120_000, async () => {
          const r = await get("gw", "live.example.com", "/");
          return r.status === 200 && echoedHeader(r.body, "x-live") === "config-v1"
            ? true
            : undefined;
        }),
      );
      const RATE = 80;
      const load = loadLoop(
        () => get("gw", "live.example.com", "/live"),
        RATE,
        r => echoedHeader(r.body, "x-live"),
      );
      const started = Date.now();
      const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
      // the latest 20 responses all show `value`
      const showing = (value: string) => () => {
        const recent = [...load.samples].sort((a, b) => a.sent - b.sent).slice(-20);
        return recent.length === 20 && recent.every(s => s.value === value) ? true : undefined;
      };
      let samples: Sample[];
      let configChanged: number;
      let moduleChanged: number;
      try {
        await sleep(2_000);
        configChanged = Date.now();
        patchPlugin("live", { config: { set: [{ name: "x-live", value: "config-v2" }] } });
        await withLogs(eventually("config-v2 under load", 30_000, showing("config-v2")));
        await sleep(1_000);
        const module = settingHeader("x-live", `module-v3 ${ns}`);
        moduleChanged = Date.now();
        patchPlugin("live", { source: { builtin: null, inline: base64(module) }, config: null });
        await withLogs(eventually("module-v3 under load", 30_000, showing(`module-v3 ${ns}`)));
        await sleep(2_000);
      } finally {
        samples = await load.stop();
      }
      const seconds = (Date.now() - started) / 1000;
      const failed = samples.filter(s => s.status !== 200);
      const config = propagation(samples, configChanged, moduleChanged, "config-v2");
      const module = propagation(samples, moduleChanged, Infinity, `module-v3 ${ns}`);
      console.log(
        `      ${samples.length} requests in ${seconds.toFixed(1)} s (${(samples.length / seconds).toFixed(0)} req/s), ${failed.length} failed; ` +
          `config change seen after ${config.first} ms, by every request after ${config.settled} ms; ` +
          `module change seen after ${module.first} ms, by every request after ${module.settled} ms`,
      );
      expect(
        failed.slice(0, 5).map(s => `${s.status} ${s.error ?? ""}`),
        `${failed.length} failed requests`,
      ).to.deep.equal([]);
      expect(samples.length).to.be.at.least(RATE * seconds * 0.5);
      // only the versions in play, in order: nothing else reached the backend
      expect(new Set(samples.map(s => s.value))).to.deep.equal(
        new Set(["config-v1", "config-v2", `module-v3 ${ns}`]),
      );
      expect(config.settled, "config propagation (ms)").to.be.a("number").and.at.most(10_000);
      expect(module.settled, "module propagation (ms)").to.be.a("number").and.at.most(15_000);
      await withLogs(readyAs("live", "True", "Loaded"));
    });
  });

  describe("a module that does not load", () => {
    it("keeps the previous version serving, reports Ready False naming the proxy and the reason, and is Ready again once fixed", async () => {
      const serving = sha256(rejecting(418, "short and stout", [["x-teapot", ns]]));
      const watch = loadLoop(
        () => get("gw", "teapot.example.com", "/brew"),
        20,
        r => `${r.status} ${r.body}`,
      );
      let samples: Sample[];
      try {
        const invalid = new TextEncoder().encode(`not a WebAssembly module (${ns})`);
        let since = Date.now();
        patchPlugin("teapot", { source: { inline: base64(invalid) } });
        const broken = await withLogs(readyAs("teapot", "False", "InvalidModule", 60_000));
        const reported = { invalid: Date.now() - since, missing: 0, fixed: 0 };
        expect(broken.status?.digest).to.equal(sha256(invalid));
        expect(condition(broken.status?.conditions, "Accepted")).to.include({ status: "True" });
        const message = condition(broken.status?.conditions, "Ready")?.message ?? "";
        expect(message).to.match(
          new RegExp(
            `^proxy ${cp.identity}: InvalidModule: the plugin is not a valid WebAssembly module`,
          ),
        );
        expect(message).to.include(`the previous version ${serving} keeps serving`);

        const noEntryPoint = wasmModule(
          `(func (export "something_else") (result i32) (i32.const 0))`,
        );
        since = Date.now();
        patchPlugin("teapot", { source: { inline: base64(noEntryPoint) } });
        const missing = await withLogs(readyAs("teapot", "False", "MissingExport", 60_000));
        reported.missing = Date.now() - since;
        expect(missing.status?.digest).to.equal(sha256(noEntryPoint));
        expect(condition(missing.status?.conditions, "Ready")?.message).to.include(
          `proxy ${cp.identity}: MissingExport: the plugin exports neither on_request nor on_response`,
        );

        const fixed = rejecting(418, "fixed", [["x-teapot", ns]]);
        since = Date.now();
        patchPlugin("teapot", { source: { inline: base64(fixed) } });
        const ready = await withLogs(readyAs("teapot", "True", "Loaded", 60_000));
        reported.fixed = Date.now() - since;
        console.log(
          `      status after the patch: Ready=False InvalidModule in ${reported.invalid} ms, MissingExport in ${reported.missing} ms, Ready=True in ${reported.fixed} ms`,
        );
        expect(ready.status?.digest).to.equal(sha256(fixed));
        await withLogs(
          eventually("the fixed module to answer", 30_000, async () =>
            (await get("gw", "teapot.example.com", "/brew")).body === "fixed" ? true : undefined,
          ),
        );
      } finally {
        samples = await watch.stop();
      }
      // Every request got the previous version until the fix, then the fixed one (the two
      // workers swap moments apart, so both answer for a little while): none failed.
      const answers = samples.map(s => s.value ?? `failed: ${s.error}`);
      const distinct = (list: string[]) => [...new Set(list)].sort();
      const firstFixed = answers.indexOf("418 fixed");
      expect(firstFixed, "the fixed module answered").to.be.greaterThan(0);
      expect(distinct(answers.slice(0, firstFixed))).to.deep.equal(["418 short and stout"]);
      expect(distinct(answers)).to.deep.equal(["418 fixed", "418 short and stout"]);
      expect(answers.at(-1)).to.equal("418 fixed");
      const watched = samples.at(-1)!.sent - samples[0]!.sent;
      expect(samples.length, "requests watched").to.be.at.least((20 * watched) / 1000 / 2);
    });
  });

  describe("admission", () => {
    const cases: Array<{ name: string; invalid: string; valid: string; message: string }> = [
      {
        name: "a url source without sha256",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: unpinned}
spec: {source: {url: {url: "http://127.0.0.1:9/plugin.wasm"}}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: unpinned}
spec: {source: {url: {url: "http://127.0.0.1:9/plugin.wasm", sha256: "sha256:${"0".repeat(64)}"}}}
`,
        message: "spec.source.url.sha256: Required value",
      },
      {
        name: "a url source whose spec.digest disagrees with its sha256",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: disagreeing}
spec:
  source: {url: {url: "http://127.0.0.1:9/plugin.wasm", sha256: "sha256:${"0".repeat(64)}"}}
  digest: sha256:${"1".repeat(64)}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: disagreeing}
spec:
  source: {url: {url: "http://127.0.0.1:9/plugin.wasm", sha256: "sha256:${"0".repeat(64)}"}}
  digest: sha256:${"0".repeat(64)}
`,
        message: `RautaPlugin NS/disagreeing: spec.digest (sha256:${"1".repeat(64)}) and spec.source.url.sha256 (sha256:${"0".repeat(64)}) disagree`,
      },
      {
        name: "a built-in config its shipped schema refuses (cors allowOrigins: x)",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: cors}
spec: {source: {builtin: cors}, config: {allowOrigins: "x"}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: cors}
spec: {source: {builtin: cors}, config: {allowOrigins: ["https://app.example.com"]}}
`,
        message:
          "RautaPlugin NS/cors: spec.config.allowOrigins: Invalid input: expected array, received string",
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.name} with the intended message; accepts the valid twin`, async () => {
        const rejected = k.kubectlResult(["apply", "-n", ns, "-f", "-"], c.invalid);
        expect(rejected.code, rejected.stdout).to.not.equal(0);
        expect(rejected.stderr).to.include(c.message.replaceAll("NS", ns));
        const accepted = k.kubectlResult(["apply", "-n", ns, "-f", "-"], c.valid);
        expect(accepted.code, accepted.stderr).to.equal(0);
        const name = /name: ([a-z-]+)/.exec(c.valid)![1]!;
        const accepting = await eventually(`RautaPlugin ${name} Accepted`, 30_000, () =>
          pluginCondition(name, "Accepted"),
        );
        expect(accepting).to.include({ status: "True" });
      });
    }
  });
});
