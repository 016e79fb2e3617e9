// GatewayClass status.supportedFeatures: the suite runs exactly what is listed there, so a
// feature whose fields the installed CRDs prune (HTTPRoute retry on standard channel) is listed
// only where the experimental-channel CRDs are installed.
import { expect } from "chai";
import { compile, emptySnapshot } from "../../../capabilities/compiler/index.ts";
import type { Snapshot } from "../../../capabilities/compiler/index.ts";
import { channelOf } from "../../../capabilities/controller/api-channel.ts";

function features(channel?: "standard" | "experimental"): string[] {
  const snapshot: Snapshot = emptySnapshot();
  snapshot.gatewayClasses = [
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "rauta", generation: 1 },
      spec: { controllerName: "rauta.io/gateway-controller" },
    },
  ] as Snapshot["gatewayClasses"];
  const result = compile(snapshot, channel ? { gatewayApiChannel: channel } : {});
  const status = result.statuses.find(s => s.kind === "GatewayClass")!.status as {
    supportedFeatures: Array<{ name: string }>;
  };
  return status.supportedFeatures.map(f => f.name);
}

describe("compiler: GatewayClass supportedFeatures", () => {
  it("standard channel (the default): no retry features, sorted", () => {
    const list = features();
    expect(list).to.deep.equal(features("standard"));
    expect(list).to.include("HTTPRoute").and.not.include("HTTPRouteRetry");
    expect(list).to.deep.equal([...list].sort());
  });

  it("experimental channel: the retry features join, still sorted", () => {
    const list = features("experimental");
    expect(list).to.include.members([
      "HTTPRouteRetry",
      "HTTPRouteRetryBackendTimeout",
      "HTTPRouteRetryConnectionError",
    ]);
    expect(list).to.deep.equal([...list].sort());
  });

  it("the channel is the HTTPRoute CRD's annotation; anything else counts as standard", () => {
    const crd = (channel?: string) => ({
      metadata: {
        annotations: (channel ? { "gateway.networking.k8s.io/channel": channel } : {}) as Record<
          string,
          string
        >,
      },
    });
    expect(channelOf(crd("experimental"))).to.equal("experimental");
    expect(channelOf(crd("standard"))).to.equal("standard");
    expect(channelOf(crd())).to.equal("standard");
    expect(channelOf(undefined)).to.equal("standard");
  });
});
