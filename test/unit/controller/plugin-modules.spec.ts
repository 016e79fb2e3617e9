// The controller's plugin-module step: the module a configMap source names is read from the
// plugin's namespace, hashed, and copied into a ConfigMap of the proxies' namespace named after
// its digest; copies no RautaPlugin uses any more are deleted.
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { ConfigMapObject } from "../../../capabilities/controller/plugin-modules.ts";
import {
  CONFIGMAP_MODULE_LIMIT,
  PLUGIN_DIGEST_ANNOTATION,
  PLUGIN_MODULE_LABEL,
  PluginModuleSync,
  resolveModule,
} from "../../../capabilities/controller/plugin-modules.ts";
import { proxyReports } from "../../../capabilities/controller/kubernetes-io.ts";
import { MemoryConfigMaps, digestOf, wasm } from "./memory-config-maps.ts";

const ref = { namespace: "shop", name: "modules", key: "plugin.wasm" };
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const stored = (copy: ConfigMapObject) => Buffer.from(copy.binaryData!["plugin.wasm"]!, "base64");

describe("plugin modules: reading a configMap source", () => {
  it("copies a binaryData module as is, named and labelled after its digest", () => {
    const module = wasm();
    const digest = digestOf(module);
    const result = resolveModule(
      { binaryData: { "plugin.wasm": b64(module) } },
      ref,
      "rauta-system",
    );
    if ("reason" in result) throw new Error(result.message);
    const hex16 = digest.slice("sha256:".length, "sha256:".length + 16);
    expect(result.digest).to.equal(digest);
    expect(result.copy.metadata).to.deep.equal({
      name: `rauta-plugin-${hex16}`,
      namespace: "rauta-system",
      labels: { [PLUGIN_MODULE_LABEL]: hex16 },
      annotations: { [PLUGIN_DIGEST_ANNOTATION]: digest },
    });
    expect(stored(result.copy).equals(module)).to.equal(true);
  });

  it("hashes a gzip'd module unpacked (what the proxy verifies), and reads base64 from data", () => {
    const module = wasm("zipped");
    const result = resolveModule(
      { data: { "plugin.wasm": `${b64(gzipSync(module))}\n` } },
      ref,
      "rauta-system",
    );
    expect(result).to.have.property("digest", digestOf(module));
  });

  it("gzips a module too large for a ConfigMap when that makes it fit", () => {
    const module = wasm("a".repeat(CONFIGMAP_MODULE_LIMIT + 10));
    const result = resolveModule(
      { binaryData: { "plugin.wasm": b64(module) } },
      ref,
      "rauta-system",
    );
    if ("reason" in result) throw new Error(result.message);
    expect(result.digest).to.equal(digestOf(module));
    const bytes = stored(result.copy);
    expect(bytes.length).to.be.below(CONFIGMAP_MODULE_LIMIT);
    expect(gunzipSync(bytes).equals(module)).to.equal(true);
  });

  it("refuses a module that does not fit a ConfigMap even gzip'd, pointing at url sources", () => {
    const module = wasm(randomBytes(CONFIGMAP_MODULE_LIMIT + 10).toString("latin1"));
    const result = resolveModule(
      { binaryData: { "plugin.wasm": b64(gzipSync(module)) } },
      ref,
      "rauta-system",
    );
    expect(result).to.have.property("reason", "InvalidSource");
    expect((result as { message: string }).message).to.match(
      /more than a ConfigMap holds \(1 MiB\); serve it from a url source instead$/,
    );
  });

  it("reports a missing ConfigMap or key as SourceNotFound, listing the keys there are", () => {
    expect(resolveModule(undefined, ref, "rauta-system")).to.deep.equal({
      reason: "SourceNotFound",
      message: "ConfigMap shop/modules does not exist",
    });
    expect(
      resolveModule(
        { binaryData: { "auth.wasm": "AA==" }, data: { README: "x" } },
        ref,
        "rauta-system",
      ),
    ).to.deep.equal({
      reason: "SourceNotFound",
      message:
        "ConfigMap shop/modules has no key plugin.wasm (its keys: README, auth.wasm); set spec.source.configMap.key",
    });
  });

  it("refuses what is not a WebAssembly module as InvalidSource", () => {
    expect(
      resolveModule({ data: { "plugin.wasm": "not a module, just words!" } }, ref, "rauta-system"),
    ).to.have.property("reason", "InvalidSource");
    expect(
      resolveModule(
        { binaryData: { "plugin.wasm": b64(Buffer.from("ELF...")) } },
        ref,
        "rauta-system",
      ),
    ).to.deep.equal({
      reason: "InvalidSource",
      message:
        "ConfigMap shop/modules key plugin.wasm is not a WebAssembly module (it does not start with \\0asm)",
    });
  });
});

describe("plugin modules: keeping the copies", () => {
  it("reads an unchanged source once, writes each copy once, and prunes unused copies", async () => {
    const maps = new MemoryConfigMaps();
    maps.put("shop", "modules", { binaryData: { "plugin.wasm": b64(wasm("v1")) } });
    const sync = new PluginModuleSync(maps, "rauta-system");
    const version = () => maps.maps.get("shop/modules")?.metadata?.resourceVersion;

    const first = await sync.resolve([ref, ref], version);
    expect(first).to.have.length(1);
    expect(first[0]!.digest).to.equal(digestOf(wasm("v1")));
    await sync.resolve([ref], version);
    expect(maps.calls.filter(c => c.startsWith("get") || c.startsWith("apply"))).to.deep.equal([
      "get shop/modules",
      `apply rauta-system/${first[0]!.copy!.name}`,
    ]);

    // a new module version: read again, copied under its own name; the old copy goes once unused
    maps.put("shop", "modules", { binaryData: { "plugin.wasm": b64(wasm("v2")) } });
    const second = await sync.resolve([ref], version);
    await sync.prune(second);
    const copies = [...maps.maps.keys()].filter(k => k.startsWith("rauta-system/"));
    expect(copies).to.deep.equal([`rauta-system/${second[0]!.copy!.name}`]);
    // nothing changed: no second LIST
    const lists = maps.calls.filter(c => c.startsWith("list")).length;
    await sync.prune(second);
    expect(maps.calls.filter(c => c.startsWith("list")).length).to.equal(lists);
  });

  it("keeps one copy for two sources holding the same module", async () => {
    const maps = new MemoryConfigMaps();
    maps.put("shop", "modules", { binaryData: { "plugin.wasm": b64(wasm()) } });
    maps.put("blog", "modules", { binaryData: { "plugin.wasm": b64(gzipSync(wasm())) } });
    const sync = new PluginModuleSync(maps, "rauta-system");
    const modules = await sync.resolve([ref, { ...ref, namespace: "blog" }], () => undefined);
    expect(new Set(modules.map(m => m.copy?.name)).size).to.equal(1);
    expect(maps.calls.filter(c => c.startsWith("apply"))).to.have.length(1);
  });
});

describe("proxy heartbeats as the controller reads them", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");
  const lease = (name: string, renewTime: string, annotations: Record<string, string>) => ({
    metadata: { name: `rauta-proxy-${name}`, annotations },
    spec: { holderIdentity: name, renewTime, leaseDurationSeconds: 15 },
  });

  it("keeps live proxies only, with the generation served and the plugin problems reported", () => {
    const reports = proxyReports(
      [
        lease("a", "2026-01-01T00:00:55.000000Z", {
          "rauta.io/loaded-generation": "7",
          "rauta.io/plugin-problems":
            '{"generation":7,"problems":[{"plugin":"shop/geo","reason":"LoadFailed","message":"trap"}]}',
        }),
        lease("b", "2026-01-01T00:00:50.000000Z", { "rauta.io/loaded-generation": "" }),
        lease("gone", "2026-01-01T00:00:10.000000Z", { "rauta.io/loaded-generation": "6" }),
        lease("c", "2026-01-01T00:00:58.000000Z", {
          "rauta.io/loaded-generation": "7",
          "rauta.io/plugin-problems": "garbage",
        }),
      ],
      now,
    );
    expect(reports).to.deep.equal([
      {
        name: "a",
        generation: 7,
        plugins: {
          generation: 7,
          problems: [{ plugin: "shop/geo", reason: "LoadFailed", message: "trap" }],
        },
      },
      { name: "b" },
      { name: "c", generation: 7 },
    ]);
  });
});
