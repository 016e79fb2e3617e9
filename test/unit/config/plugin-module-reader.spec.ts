// The in-cluster proxy reads configMap plugin sources through the API, from its own namespace
// only (where the controller copies every module), binaryData or base64 in data.
import { expect } from "chai";
import { configMapModuleReader } from "../../../proxy/kubernetes/plugin-modules.ts";
import type { ModuleConfigMap } from "../../../proxy/kubernetes/plugin-modules.ts";
import { ModuleError } from "../../../proxy/plugins/modules.ts";

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
