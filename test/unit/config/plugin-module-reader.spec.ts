// The in-cluster proxy reads configMap plugin sources through the API, from its own namespace
// only (where the controller copies every module), binaryData or base64 in data; with worker
// processes (which never talk to Kubernetes) the primary hands them the modules inline.
import { expect } from "chai";
import { sealConfig } from "../../../proxy/config/hash.ts";
import { validateConfig } from "../../../proxy/config/load.ts";
import type { CompiledConfig, Plugin } from "../../../proxy/config/schema.ts";
import { CONFIG_API_VERSION } from "../../../proxy/config/version.ts";
import {
  ConfigMapSourceInliner,
  configMapModuleReader,
} from "../../../proxy/kubernetes/plugin-modules.ts";
import type { ModuleConfigMap } from "../../../proxy/kubernetes/plugin-modules.ts";
import { ModuleError, sha256 } from "../../../proxy/plugins/modules.ts";

const module = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

function reader(maps: Record<string, ModuleConfigMap>) {
  const asked: string[] = [];
  const read = configMapModuleReader("rauta-system", async (namespace, name) => {
    asked.push(`${namespace}/${name}`);
    return maps[`${namespace}/${name}`];
  });
  return { read, asked };
}

describe("proxy: reading plugin modules from ConfigMaps", () => {
  it("reads a module copy's binaryData, or base64 text in data", async () => {
    const { read } = reader({
      "rauta-system/rauta-plugin-0123456789abcdef": {
        binaryData: { "plugin.wasm": module.toString("base64") },
      },
      "rauta-system/by-hand": { data: { "plugin.wasm": `${module.toString("base64")}\n` } },
    });
    const copy = await read("rauta-system", "rauta-plugin-0123456789abcdef", "plugin.wasm");
    expect(Buffer.from(copy!).equals(module)).to.equal(true);
    expect(
      Buffer.from((await read("rauta-system", "by-hand", "plugin.wasm"))!).equals(module),
    ).to.equal(true);
    expect(await read("rauta-system", "by-hand", "other.wasm")).to.equal(null);
  });

  it("reports a missing ConfigMap as SourceNotFound", async () => {
    const { read } = reader({});
    const error = await read("rauta-system", "rauta-plugin-gone", "plugin.wasm").catch(
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ModuleError);
    expect(error).to.include({
      reason: "SourceNotFound",
      message: "ConfigMap rauta-system/rauta-plugin-gone does not exist",
    });
  });

  it("never reads another namespace", async () => {
    const { read, asked } = reader({ "shop/modules": { binaryData: { "plugin.wasm": "AA==" } } });
    const error = await read("shop", "modules", "plugin.wasm").catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ModuleError);
    expect((error as ModuleError).reason).to.equal("SourceNotFound");
    expect((error as ModuleError).message).to.match(
      /reads plugin modules only from its own namespace rauta-system/,
    );
    expect(asked).to.deep.equal([]);
  });
});

function pluginWith(id: string, source: Plugin["source"], digest?: string): Plugin {
  return {
    id,
    ...(digest ? { digest } : {}),
    source,
    config: {},
    needsBody: false,
    failurePolicy: "FailClosed",
    limits: { memoryMiB: 16, timeoutMs: 50, maxBodyBytes: 0 },
  };
}

const sealed = (plugins: Plugin[], generation = 7): CompiledConfig =>
  sealConfig(
    { apiVersion: CONFIG_API_VERSION, listeners: [], routes: [], clusters: [], plugins },
    generation,
  );

// `rauta proxy --workers N --config-source kubernetes`: before this, a worker had no ConfigMap
// reader, so every configMap plugin failed there with "cannot be read by this proxy".
describe("proxy: configMap plugin modules for worker processes", () => {
  const digest = sha256(module);
  const copy = {
    namespace: "rauta-system",
    name: "rauta-plugin-0123456789abcdef",
    key: "plugin.wasm",
  };
  const maps = {
    [`rauta-system/${copy.name}`]: { binaryData: { "plugin.wasm": module.toString("base64") } },
  };

  it("replaces each configMap source by the module inline, keeping its digest, resealed at the same generation", async () => {
    const { read, asked } = reader(maps);
    const builtin = pluginWith("shop/cors", { builtin: "cors" });
    const config = sealed([pluginWith("shop/auth", { configMap: copy }, digest), builtin]);
    const { config: inlined, problems } = await new ConfigMapSourceInliner(read).inline(config);
    expect(problems).to.deep.equal([]);
    const valid = validateConfig(inlined);
    expect(valid.generation).to.equal(7);
    expect(valid.plugins).to.deep.equal([
      pluginWith("shop/auth", { inline: module.toString("base64") }, digest),
      builtin,
    ]);
    expect(asked).to.deep.equal([`rauta-system/${copy.name}`]);
  });

  it("reads a (copy, digest) once across generations, and again for another digest", async () => {
    const { read, asked } = reader(maps);
    const inliner = new ConfigMapSourceInliner(read);
    await inliner.inline(sealed([pluginWith("shop/auth", { configMap: copy }, digest)], 1));
    await inliner.inline(sealed([pluginWith("shop/auth", { configMap: copy }, digest)], 2));
    expect(asked).to.have.length(1);
    const other = `sha256:${"1".repeat(64)}`;
    await inliner.inline(sealed([pluginWith("shop/auth", { configMap: copy }, other)], 3));
    expect(asked).to.have.length(2);
  });

  it("leaves a module it cannot read as a configMap source and says why", async () => {
    const { read } = reader({});
    const plugin = pluginWith("shop/auth", { configMap: copy }, digest);
    const { config, problems } = await new ConfigMapSourceInliner(read).inline(sealed([plugin]));
    expect(validateConfig(config).plugins).to.deep.equal([plugin]);
    expect(problems).to.deep.equal([
      `plugin shop/auth: ConfigMap rauta-system/${copy.name} does not exist`,
    ]);
  });

  it("hands back anything else as it is: no configMap source, a hash that does not match, not a config", async () => {
    const { read, asked } = reader(maps);
    const inliner = new ConfigMapSourceInliner(read);
    const plain = sealed([pluginWith("shop/cors", { builtin: "cors" })]);
    expect((await inliner.inline(plain)).config).to.equal(plain);
    const tampered = {
      ...sealed([pluginWith("shop/auth", { configMap: copy }, digest)]),
      generation: 1,
      hash: `sha256:${"0".repeat(64)}`,
    };
    expect((await inliner.inline(tampered)).config).to.equal(tampered);
    expect((await inliner.inline("garbage")).config).to.equal("garbage");
    expect(asked).to.deep.equal([]);
  });
});
