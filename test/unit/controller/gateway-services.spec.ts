// The Service each accepted Gateway gets (GEP-1762 generated infrastructure): names, labels,
// address and ports.
import { expect } from "chai";
import { gatewayServices, serviceName } from "../../../capabilities/controller/gateway-services.ts";
import type { ObjectStatus } from "../../../capabilities/compiler/types.ts";

const gateway = (name: string, uid = `uid-${name}`) => ({
  metadata: { name, namespace: "apps", uid },
  spec: { listeners: [{ port: 443 }, { port: 80 }, { port: 443 }] },
});
const status = (name: string, accepted: boolean, address?: string): ObjectStatus =>
  ({
    kind: "Gateway",
    namespace: "apps",
    name,
    status: {
      conditions: [{ type: "Accepted", status: accepted ? "True" : "False" }],
      ...(address ? { addresses: [{ type: "IPAddress", value: address }] } : {}),
    },
  }) as unknown as ObjectStatus;

describe("gateway services", () => {
  it("one per accepted Gateway: listener ports once each, the Gateway's address as endpoint", () => {
    const out = gatewayServices(
      [gateway("a"), gateway("b"), gateway("v6")],
      [
        status("a", true, "10.0.0.7"),
        status("b", false, "10.0.0.8"),
        status("v6", true, "fd00::1"),
      ],
    );
    expect(out.map(s => s.service.metadata!.name)).to.deep.equal(["rauta-a", "rauta-v6"]);
    const [a, v6] = out as [(typeof out)[0], (typeof out)[0]];
    expect(a.service.spec!.ports).to.deep.equal([
      { name: "tcp-80", port: 80, protocol: "TCP", targetPort: 80 },
      { name: "tcp-443", port: 443, protocol: "TCP", targetPort: 443 },
    ]);
    expect(a.service.spec!.selector).to.equal(undefined);
    expect(a.endpointSlice.addressType).to.equal("IPv4");
    expect(a.endpointSlice.endpoints).to.deep.equal([
      { addresses: ["10.0.0.7"], conditions: { ready: true } },
    ]);
    expect(v6.endpointSlice.addressType).to.equal("IPv6");
    // what the API server accepts as label values (found by the conformance suite: a "/" in one
    // made every apply fail)
    const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
    for (const o of [a.service, a.endpointSlice])
      for (const [k, v] of Object.entries(o.metadata!.labels!))
        expect(v, k).to.match(labelValue).and.have.length.at.most(63);
  });

  it("an accepted Gateway without an address yet gets its Service with no endpoint", () => {
    const [only] = gatewayServices([gateway("a")], [status("a", true)]);
    expect(only!.endpointSlice.endpoints).to.deep.equal([]);
  });

  it("names fit a Service name (63 characters), distinct for distinct long Gateway names", () => {
    const long = "x".repeat(70);
    expect(serviceName("web")).to.equal("rauta-web");
    expect(serviceName(long)).to.have.length.at.most(63);
    expect(serviceName(long)).to.not.equal(serviceName(`${long}y`));
    expect(serviceName(long)).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});
