// Gateway addresses from the controller's pool: each Gateway gets its own; one the pool cannot
// serve is accepted but not programmed (AddressNotAssigned) rather than binding the wildcard
// address, where it would conflict with every other Gateway (conformance runs create more
// Gateways than a small pool holds).
import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../../../capabilities/compiler/index.ts";
import { assignAddresses } from "../../../capabilities/controller/addresses.ts";
import { loadManifests } from "../../../proxy/cli/manifests.ts";

const gateway = (name: string) => `---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default, generation: 1}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}, {name: any, port: 80, protocol: HTTP, hostname: "*.example.com"}]
`;
const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta, generation: 1}
spec: {controllerName: rauta.io/gateway-controller}
${gateway("a")}${gateway("b")}${gateway("c")}`;

function snapshot() {
  const dir = mkdtempSync(join(tmpdir(), "rauta-addresses-"));
  writeFileSync(join(dir, "in.yaml"), yaml);
  return loadManifests([join(dir, "in.yaml")]).snapshot;
}

type Condition = { type: string; status: string; reason: string };
function conditions(result: ReturnType<typeof compile>, name: string): Condition[] {
  const s = result.statuses.find(x => x.kind === "Gateway" && x.name === name)!;
  return (s.status as { conditions: Condition[] }).conditions;
}
const of = (cs: Condition[], type: string) => cs.find(c => c.type === type)!;

describe("compiler: Gateway addresses from a pool", () => {
  it("gives identical Gateways their own sockets; the one left without an address waits, conflicting with none", () => {
    const result = compile(snapshot(), {
      now: "2026-01-01T00:00:00Z",
      gatewayAddresses: { "default/a": "10.0.0.1", "default/b": "10.0.0.2" },
      addressesRequired: true,
    });
    expect(result.config.listeners.map(l => l.name)).to.deep.equal(["10.0.0.1:80", "10.0.0.2:80"]);
    for (const name of ["a", "b"])
      expect(of(conditions(result, name), "Programmed").status).to.equal("True");
    const c = conditions(result, "c");
    expect(of(c, "Accepted")).to.include({ status: "True", reason: "Accepted" });
    expect(of(c, "Programmed")).to.include({ status: "False", reason: "AddressNotAssigned" });
    const listeners = (
      result.statuses.find(x => x.name === "c")!.status as {
        listeners: Array<{ conditions: Condition[] }>;
      }
    ).listeners;
    for (const l of listeners) expect(of(l.conditions, "Conflicted").status).to.equal("False");
  });

  it("without a pool every Gateway binds the default address, where identical listeners conflict", () => {
    const result = compile(snapshot(), { now: "2026-01-01T00:00:00Z" });
    expect(result.config.listeners).to.deep.equal([]);
    const listeners = (
      result.statuses.find(x => x.name === "b")!.status as {
        listeners: Array<{ conditions: Condition[] }>;
      }
    ).listeners;
    for (const l of listeners) expect(of(l.conditions, "Conflicted").status).to.equal("True");
  });

  it("static addresses, as GatewayStaticAddresses steps through them: unsupported type → not accepted; one outside the pool → accepted, not programmed; only the usable one → programmed with it", () => {
    const withAddresses = (addresses: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta, generation: 1}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: static, namespace: default, generation: 1}
spec:
  gatewayClassName: rauta
  addresses: ${addresses}
  listeners: [{name: http, port: 8080, protocol: HTTP}]
`;
    const compileWith = (addresses: string) => {
      const dir = mkdtempSync(join(tmpdir(), "rauta-addresses-"));
      writeFileSync(join(dir, "in.yaml"), withAddresses(addresses));
      return compile(loadManifests([join(dir, "in.yaml")]).snapshot, {
        now: "2026-01-01T00:00:00Z",
        addressesRequired: true,
        usableAddresses: ["10.0.0.1", "10.0.0.2"],
      });
    };
    const step1 = conditions(
      compileWith('[{type: "test/fake", value: "x"}, {value: 10.9.9.9}, {value: 10.0.0.2}]'),
      "static",
    );
    expect(of(step1, "Accepted")).to.include({ status: "False", reason: "UnsupportedAddress" });
    const step2 = compileWith("[{value: 10.9.9.9}, {value: 10.0.0.2}]");
    expect(of(conditions(step2, "static"), "Accepted")).to.include({ status: "True" });
    expect(of(conditions(step2, "static"), "Programmed")).to.include({
      status: "False",
      reason: "AddressNotUsable",
    });
    expect(step2.config.listeners).to.deep.equal([]);
    const step3 = compileWith("[{value: 10.0.0.2}]");
    expect(of(conditions(step3, "static"), "Programmed")).to.include({ status: "True" });
    expect(step3.config.listeners.map(l => l.name)).to.deep.equal(["10.0.0.2:8080"]);
    const status = step3.statuses.find(x => x.name === "static")!.status as {
      addresses: Array<{ value: string }>;
    };
    expect(status.addresses).to.deep.equal([{ type: "IPAddress", value: "10.0.0.2" }]);
  });

  it("the pool never hands out an address a Gateway requests statically", () => {
    const gw = (name: string, addresses?: string[], current?: string) => ({
      metadata: { name, namespace: "default" },
      spec: {
        gatewayClassName: "rauta",
        listeners: [],
        ...(addresses ? { addresses: addresses.map(value => ({ value })) } : {}),
      },
      ...(current ? { status: { addresses: [{ value: current }] } } : {}),
    });
    expect(
      assignAddresses(
        [gw("static", ["10.0.0.1"]), gw("keeps", undefined, "10.0.0.1"), gw("new")] as never,
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
      ),
    ).to.deep.equal({ "default/keeps": "10.0.0.2", "default/new": "10.0.0.3" });
  });
});
