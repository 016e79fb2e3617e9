// RautaPlugin admission: what `kubectl apply` of a RautaPlugin answers. A source that can never
// load, or a config its built-in's schema (or its own configSchema) rejects, is denied with a
// message naming the object, the field and the fix; a built-in without a shipped schema is
// admitted with a warning.
import { expect } from "chai";
import { PeprValidateRequest } from "pepr";
import type { KubernetesObject } from "kubernetes-fluent-client";
import {
  admitRautaPlugin,
  validateRautaPlugin,
} from "../../../capabilities/admission/rauta-plugin.ts";
import type { RautaPlugin } from "../../../capabilities/compiler/index.ts";

const DIGEST = `sha256:${"e".repeat(64)}`;

const plugin = (spec: Partial<RautaPlugin["spec"]>): RautaPlugin => ({
  metadata: { name: "geo", namespace: "shop" },
  spec: { source: { builtin: "cors" }, ...spec },
});

// Small stand-ins for the shipped schemas (plugins-sdk/builtins/<name>/schema.json), so these
// specs say what admission does with any schema, not what today's built-ins require.
const schemas = {
  cors: {
    type: "object",
    properties: {
      allowOrigins: { type: "array", items: { type: "string" }, minItems: 1 },
      maxAgeSeconds: { type: "integer", minimum: 0 },
    },
    required: ["allowOrigins"],
  },
  "rate-limit": null,
};

describe("RautaPlugin admission", () => {
  it("rejects a url source without sha256, saying how to pin it", () => {
    expect(
      validateRautaPlugin(
        plugin({ source: { url: { url: "https://plugins.example.com/geo.wasm" } as never } }),
      ),
    ).to.deep.equal([
      'RautaPlugin shop/geo: spec.source.url.sha256 is required: pin the module by its digest, "sha256:<64 hex>" (sha256sum of the .wasm file), so every proxy runs the same bytes',
    ]);
  });

  it("rejects a url that is not http(s)", () => {
    expect(
      validateRautaPlugin(
        plugin({ source: { url: { url: "ftp://plugins.example.com/geo.wasm", sha256: DIGEST } } }),
      ),
    ).to.deep.equal([
      'RautaPlugin shop/geo: spec.source.url.url: "ftp://plugins.example.com/geo.wasm" is not an http:// or https:// URL; give the address the proxies download the module from',
    ]);
  });

  it("rejects spec.digest that disagrees with url.sha256, accepts an equal one", () => {
    const url = { url: "https://plugins.example.com/geo.wasm", sha256: DIGEST };
    expect(
      validateRautaPlugin(plugin({ source: { url }, digest: `sha256:${"f".repeat(64)}` }))[0],
    ).to.match(
      /^RautaPlugin shop\/geo: spec\.digest \(sha256:f{64}\) and spec\.source\.url\.sha256 \(sha256:e{64}\) disagree; remove spec\.digest/,
    );
    expect(validateRautaPlugin(plugin({ source: { url }, digest: DIGEST }))).to.deep.equal([]);
  });

  it("rejects a source with no kind set, listing all four", () => {
    expect(validateRautaPlugin(plugin({ source: {} }))).to.deep.equal([
      "RautaPlugin shop/geo: spec.source: set exactly one of builtin, configMap, inline, url (none is set)",
    ]);
  });

  it("does not reject a configMap source for what the ConfigMap holds (it may not exist yet)", () => {
    expect(
      validateRautaPlugin(plugin({ source: { configMap: { name: "not-yet" } }, digest: DIGEST })),
    ).to.deep.equal([]);
  });

  it("rejects a built-in's config that its schema rejects, one message per field", () => {
    expect(
      validateRautaPlugin(plugin({ config: { allowOrigins: [], maxAgeSeconds: -1 } }), schemas),
    ).to.deep.equal([
      "RautaPlugin shop/geo: spec.config.allowOrigins: Too small: expected array to have >=1 items",
      "RautaPlugin shop/geo: spec.config.maxAgeSeconds: Too small: expected number to be >=0",
    ]);
    expect(
      validateRautaPlugin(plugin({ config: { allowOrigins: ["https://a.example"] } }), schemas),
    ).to.deep.equal([]);
  });

  it("admits a built-in that ships no schema, with a warning that its config is not checked", () => {
    expect(
      admitRautaPlugin(plugin({ source: { builtin: "rate-limit" }, config: { x: 1 } }), schemas),
    ).to.deep.equal({
      problems: [],
      warnings: [
        "RautaPlugin shop/geo: spec.config is not checked: built-in rate-limit ships no config schema (plugins-sdk/builtins/rate-limit/schema.json)",
      ],
    });
  });

  it("checks the shipped built-in schemas by default", () => {
    // cors ships plugins-sdk/builtins/cors/schema.json: allowOrigins is a list
    const problems = validateRautaPlugin(plugin({ config: { allowOrigins: "https://a.example" } }));
    expect(problems).to.deep.equal([
      "RautaPlugin shop/geo: spec.config.allowOrigins: Invalid input: expected array, received string",
    ]);
  });

  describe("through the rauta-plugin capability (what kubectl apply gets back)", () => {
    interface ValidateBinding {
      isValidate?: boolean;
      validateCallback?: (req: PeprValidateRequest<KubernetesObject>) => Promise<{
        allowed: boolean;
        statusCode?: number;
        statusMessage?: string;
        warnings?: string[];
      }>;
    }
    let validate: NonNullable<ValidateBinding["validateCallback"]>;

    before(async () => {
      const { RautaPluginCapability } = await import("../../../capabilities/rauta-plugin.ts");
      const bindings = RautaPluginCapability.bindings as unknown as ValidateBinding[];
      validate = bindings.find(b => b.isValidate)!.validateCallback!;
    });

    const request = (object: RautaPlugin) =>
      new PeprValidateRequest<KubernetesObject>({
        uid: "1",
        operation: "CREATE",
        kind: { group: "rauta.io", version: "v1alpha1", kind: "RautaPlugin" },
        resource: { group: "rauta.io", version: "v1alpha1", resource: "rautaplugins" },
        name: object.metadata.name,
        namespace: object.metadata.namespace!,
        userInfo: { username: "test" },
        object,
      } as unknown as ConstructorParameters<typeof PeprValidateRequest<KubernetesObject>>[0]);

    it("denies a url source without sha256 with HTTP 422 and the message", async () => {
      const response = await validate(
        request(
          plugin({ source: { url: { url: "https://plugins.example.com/geo.wasm" } as never } }),
        ),
      );
      expect(response).to.include({ allowed: false, statusCode: 422 });
      expect(response.statusMessage).to.match(
        /^RautaPlugin shop\/geo: spec\.source\.url\.sha256 is required/,
      );
    });

    it("denies a built-in config that its shipped schema rejects", async () => {
      const response = await validate(request(plugin({ config: { allowOrigins: 7 } })));
      expect(response).to.include({
        allowed: false,
        statusCode: 422,
        statusMessage:
          "RautaPlugin shop/geo: spec.config.allowOrigins: Invalid input: expected array, received number",
      });
    });

    it("also watches ConfigMaps (a changed module is copied again)", async () => {
      const { RautaPluginCapability } = await import("../../../capabilities/rauta-plugin.ts");
      const watched = (
        RautaPluginCapability.bindings as unknown as Array<{
          isWatch?: boolean;
          event: string;
          kind: { kind: string };
        }>
      )
        .filter(b => b.isWatch && b.kind.kind === "ConfigMap")
        .map(b => b.event);
      expect(watched).to.deep.equal(["CREATEORUPDATE", "DELETE"]);
    });

    it("admits a valid url source", async () => {
      const response = await validate(
        request(
          plugin({
            source: { url: { url: "https://plugins.example.com/geo.wasm", sha256: DIGEST } },
          }),
        ),
      );
      expect(response.allowed).to.equal(true);
      expect(response.warnings).to.equal(undefined);
    });
  });
});
