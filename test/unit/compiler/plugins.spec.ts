// RautaPlugin sources and config as the compiler judges them, in the cases golden fixtures cannot
// express: configMap sources the controller resolved (cluster mode, Snapshot.pluginModules) and
// built-in config schemas given to compile() instead of the shipped ones.
import { expect } from "chai";
import { compile, emptySnapshot } from "../../../capabilities/compiler/index.ts";
import type {
  Condition,
  PluginModule,
  RautaPlugin,
  RautaPluginStatus,
  Snapshot,
} from "../../../capabilities/compiler/index.ts";

const DIGEST = `sha256:${"c".repeat(64)}`;
const OTHER = `sha256:${"d".repeat(64)}`;

function snapshot(plugins: RautaPlugin[], pluginModules?: PluginModule[]): Snapshot {
  return {
    ...emptySnapshot(),
    gatewayClasses: [
      { metadata: { name: "rauta" }, spec: { controllerName: "rauta.io/gateway-controller" } },
    ],
    gateways: [
      {
        metadata: { name: "gw", namespace: "shop" },
        spec: {
          gatewayClassName: "rauta",
          listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
        },
      },
    ],
    // every plugin attached to the Gateway as a whole, so each valid one reaches the config
    rautaPlugins: plugins.map(p => ({
      ...p,
      spec: {
        ...p.spec,
        targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "gw" }],
      },
    })),
    ...(pluginModules ? { pluginModules } : {}),
  };
}

const plugin = (name: string, spec: Partial<RautaPlugin["spec"]>): RautaPlugin => ({
  metadata: { name, namespace: "shop", generation: 1 },
  spec: { source: { builtin: "cors" }, config: { allowOrigins: ["*"] }, ...spec },
});

function statusOf(result: ReturnType<typeof compile>, name: string): RautaPluginStatus["status"] {
  const status = result.statuses.find(
    (s): s is RautaPluginStatus => s.kind === "RautaPlugin" && s.name === name,
  );
  return status!.status;
}
const accepted = (status: RautaPluginStatus["status"]): Condition =>
  status.conditions.find(c => c.type === "Accepted")!;

const fromConfigMap = (name: string, digest?: string) =>
  plugin("mod", { source: { configMap: { name } }, config: {}, ...(digest ? { digest } : {}) });
const source = { namespace: "shop", name: "modules", key: "plugin.wasm" };
const copy = {
  namespace: "rauta-system",
  name: "rauta-plugin-cccccccccccccccc",
  key: "plugin.wasm",
};

describe("compiler: RautaPlugin sources", () => {
  it("points a configMap source at the controller's copy, with the digest it computed", () => {
    const result = compile(
      snapshot([fromConfigMap("modules")], [{ source, digest: DIGEST, copy }]),
    );
    expect(result.config.plugins).to.have.length(1);
    expect(result.config.plugins[0]).to.deep.include({
      id: "shop/mod",
      digest: DIGEST,
      source: { configMap: copy },
    });
    expect(statusOf(result, "mod").digest).to.equal(DIGEST);
    expect(accepted(statusOf(result, "mod"))).to.include({ status: "True", reason: "Accepted" });
  });

  it("reports a ConfigMap the controller could not read as SourceNotFound", () => {
    const result = compile(
      snapshot(
        [fromConfigMap("modules")],
        [
          {
            source,
            problem: { reason: "SourceNotFound", message: "ConfigMap shop/modules does not exist" },
          },
        ],
      ),
    );
    expect(result.config.plugins).to.deep.equal([]);
    expect(accepted(statusOf(result, "mod"))).to.include({
      status: "False",
      reason: "SourceNotFound",
      message: "spec.source.configMap: ConfigMap shop/modules does not exist",
    });
  });

  it("refuses a module whose digest is not spec.digest (DigestMismatch), showing the actual digest", () => {
    const result = compile(
      snapshot([fromConfigMap("modules", OTHER)], [{ source, digest: DIGEST, copy }]),
    );
    expect(result.config.plugins).to.deep.equal([]);
    const status = statusOf(result, "mod");
    expect(accepted(status)).to.include({ status: "False", reason: "DigestMismatch" });
    expect(accepted(status).message).to.equal(
      `spec.digest is ${OTHER} but ConfigMap shop/modules key plugin.wasm holds a module with digest ${DIGEST}; update spec.digest or the module`,
    );
    expect(status.digest).to.equal(DIGEST);
  });

  it("accepts a module whose digest is spec.digest", () => {
    const result = compile(
      snapshot([fromConfigMap("modules", DIGEST)], [{ source, digest: DIGEST, copy }]),
    );
    expect(result.config.plugins.map(p => p.digest)).to.deep.equal([DIGEST]);
  });

  it("does not compile a configMap source the controller has not resolved", () => {
    const result = compile(snapshot([fromConfigMap("modules")], []));
    expect(accepted(statusOf(result, "mod"))).to.include({
      status: "False",
      reason: "SourceNotFound",
    });
  });

  it("standalone (no resolved modules): points at the ConfigMap the plugin names", () => {
    const result = compile(snapshot([fromConfigMap("modules")]));
    expect(result.config.plugins[0]!.source).to.deep.equal({ configMap: source });
    expect(result.config.plugins[0]!.digest).to.equal(undefined);
  });

  it("names all four source kinds when none or several are set", () => {
    const none = compile(snapshot([plugin("none", { source: {} })]));
    const two = compile(
      snapshot([
        plugin("two", { source: { builtin: "cors", url: { url: "https://x", sha256: DIGEST } } }),
      ]),
    );
    expect(accepted(statusOf(none, "none")).message).to.equal(
      "spec.source: set exactly one of builtin, configMap, inline, url (none is set)",
    );
    expect(accepted(statusOf(two, "two")).message).to.equal(
      "spec.source: set exactly one of builtin, configMap, inline, url (found builtin, url)",
    );
  });

  for (const [name, url, sha256, message] of [
    [
      "a file URL",
      "file:///etc/plugin.wasm",
      DIGEST,
      /^spec\.source\.url\.url: "file:\/\/\/etc\/plugin\.wasm" is not an http:\/\/ or https:\/\/ URL/,
    ],
    [
      "no sha256",
      "https://plugins.example.com/p.wasm",
      undefined,
      /^spec\.source\.url\.sha256 is required: pin the module by its digest/,
    ],
    [
      "a malformed sha256",
      "https://plugins.example.com/p.wasm",
      "sha256:XYZ",
      /^spec\.source\.url\.sha256: "sha256:XYZ" is not "sha256:<64 lowercase hex>"$/,
    ],
  ] as const) {
    it(`refuses a url source with ${name} (InvalidSource)`, () => {
      const result = compile(
        snapshot([
          plugin("u", {
            source: {
              url: { url, ...(sha256 ? { sha256 } : {}) } as { url: string; sha256: string },
            },
          }),
        ]),
      );
      const condition = accepted(statusOf(result, "u"));
      expect(condition).to.include({ status: "False", reason: "InvalidSource" });
      expect(condition.message).to.match(message);
    });
  }
});

describe("compiler: built-in config against its shipped schema", () => {
  const greeter = {
    type: "object",
    additionalProperties: false,
    properties: { greeting: { type: "string", minLength: 1 }, times: { type: "integer" } },
    required: ["greeting"],
  };

  it("reports a config the built-in's schema rejects as ConfigInvalid, with every field", () => {
    const result = compile(
      snapshot([
        plugin("hello", { source: { builtin: "cors" }, config: { times: "two", color: 1 } }),
      ]),
      { builtinPluginSchemas: { cors: greeter } },
    );
    expect(result.config.plugins).to.deep.equal([]);
    const condition = accepted(statusOf(result, "hello"));
    expect(condition).to.include({ status: "False", reason: "ConfigInvalid" });
    expect(condition.message.split("; ")).to.have.members([
      "spec.config.greeting: Invalid input: expected string, received undefined",
      "spec.config.times: Invalid input: expected number, received string",
      'spec.config: Unrecognized key: "color"',
    ]);
  });

  it("compiles a config the schema accepts", () => {
    const result = compile(
      snapshot([
        plugin("hello", { source: { builtin: "cors" }, config: { greeting: "hi", times: 2 } }),
      ]),
      { builtinPluginSchemas: { cors: greeter } },
    );
    expect(result.config.plugins.map(p => p.id)).to.deep.equal(["shop/hello"]);
  });

  it("does not judge the config of a built-in that ships no schema", () => {
    const result = compile(
      snapshot([plugin("hello", { source: { builtin: "cors" }, config: { anything: true } })]),
      { builtinPluginSchemas: { cors: null } },
    );
    expect(accepted(statusOf(result, "hello"))).to.include({ status: "True" });
  });

  it("checks spec.configSchema too, for any source", () => {
    const result = compile(
      snapshot([
        plugin("own", {
          source: { url: { url: "https://plugins.example.com/p.wasm", sha256: DIGEST } },
          configSchema: greeter,
          config: { greeting: "" },
        }),
      ]),
    );
    expect(accepted(statusOf(result, "own"))).to.include({
      status: "False",
      reason: "ConfigInvalid",
      message: "spec.config.greeting: Too small: expected string to have >=1 characters",
    });
  });
});

describe("compiler: plugin isolation", () => {
  it("passes Inline and Worker to the proxy and leaves Auto (the default) out of the config", () => {
    const result = compile(
      snapshot([
        plugin("auto", {}),
        plugin("inline", { isolation: "Inline" }),
        plugin("worker", { isolation: "Worker" }),
      ]),
    );
    const byId = new Map(result.config.plugins.map(p => [p.id, p]));
    expect(byId.get("shop/auto")?.isolation).to.equal(undefined);
    expect(byId.get("shop/inline")?.isolation).to.equal("Inline");
    expect(byId.get("shop/worker")?.isolation).to.equal("Worker");
  });
});
