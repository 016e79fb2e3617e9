// The Pepr wiring: every capability registers its kinds with the right GVK, admission on the
// kinds we validate, and create/update + delete watches feeding the snapshot store.
// (Importing pepr leaves handles open, hence "exit": true in .mocharc.json.)
import { expect } from "chai";

interface Binding {
  isValidate?: boolean;
  isWatch?: boolean;
  event: string;
  kind: { group: string; version: string; kind: string; plural?: string };
}

describe("Pepr capabilities", () => {
  let capabilities: Array<{ name: string; bindings: Binding[] }>;

  before(async () => {
    // test/setup.ts sets PEPR_MODE=build before pepr is first imported.
    const modules = await Promise.all([
      import("../../capabilities/gateway-class.ts"),
      import("../../capabilities/gateway.ts"),
      import("../../capabilities/http-route.ts"),
      import("../../capabilities/reference-grant.ts"),
      import("../../capabilities/rauta-plugin.ts"),
      import("../../capabilities/backends.ts"),
      import("../../capabilities/backend-traffic-policy.ts"),
      import("../../capabilities/client-traffic-policy.ts"),
      import("../../capabilities/security-policy.ts"),
    ]);
    capabilities = modules.flatMap(m => Object.values(m)) as unknown as typeof capabilities;
  });

  const summary = () =>
    capabilities.flatMap(c =>
      c.bindings.map(
        b =>
          `${c.name} ${b.kind.group || "core"}/${b.kind.version}/${b.kind.kind}${b.kind.plural ? `(${b.kind.plural})` : ""} ${b.event} ${b.isValidate ? "validate" : "watch"}`,
      ),
    );

  it("registers one capability per concern", () => {
    expect(capabilities.map(c => c.name)).to.deep.equal([
      "gateway-class",
      "gateway",
      "http-route",
      "reference-grant",
      "rauta-plugin",
      "backends",
      "backend-traffic-policy",
      "client-traffic-policy",
      "security-policy",
    ]);
  });

  it("validates Gateways, HTTPRoutes, RautaPlugins and BackendTrafficPolicies at admission", () => {
    const validating = summary().filter(s => s.endsWith("validate"));
    expect(validating).to.deep.equal([
      "gateway gateway.networking.k8s.io/v1/Gateway(gateways) CREATEORUPDATE validate",
      "http-route gateway.networking.k8s.io/v1/HTTPRoute(httproutes) CREATEORUPDATE validate",
      "rauta-plugin rauta.io/v1alpha1/RautaPlugin(rautaplugins) CREATEORUPDATE validate",
      "backend-traffic-policy rauta.io/v1alpha1/BackendTrafficPolicy(backendtrafficpolicies) CREATEORUPDATE validate",
      "client-traffic-policy rauta.io/v1alpha1/ClientTrafficPolicy(clienttrafficpolicies) CREATEORUPDATE validate",
      "security-policy rauta.io/v1alpha1/SecurityPolicy(securitypolicies) CREATEORUPDATE validate",
    ]);
  });

  it("watches every kind the compiler reads, for changes and deletions", () => {
    const watched = summary().filter(s => s.endsWith("watch"));
    for (const kind of [
      "GatewayClass(gatewayclasses)",
      "Gateway(gateways)",
      "HTTPRoute(httproutes)",
      "ReferenceGrant(referencegrants)",
      "RautaPlugin(rautaplugins)",
      "BackendTrafficPolicy(backendtrafficpolicies)",
      "ClientTrafficPolicy(clienttrafficpolicies)",
      "SecurityPolicy(securitypolicies)",
      "Service",
      "EndpointSlice",
      "Secret",
      "Namespace",
    ]) {
      expect(
        watched.filter(s => s.includes(`/${kind} `)).map(s => s.split(" ")[2]),
        kind,
      ).to.deep.equal(["CREATEORUPDATE", "DELETE"]);
    }
  });
});
