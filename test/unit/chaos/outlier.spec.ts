// Passive outlier detection under sustained failure (what the chaos suite's "all endpoints down"
// scenario does to it): the ejection multiplier must neither run away nor last forever.
import { expect } from "chai";
import { ClusterRuntime, ClusterState, EndpointHealth } from "../../../proxy/upstream/cluster.ts";
import { PoolRegistry } from "../../../proxy/upstream/pools.ts";
import { cluster } from "../proxy/helpers.ts";

describe("chaos regressions: outlier ejection", () => {
  const setup = () => {
    const pools = new PoolRegistry();
    const h = new EndpointHealth();
    const c = new ClusterRuntime(
      cluster("c", [9]),
      pools,
      () => h,
      new ClusterState({}, () => {}),
      { consecutiveFailures: 2, baseEjectionMs: 1000 },
    );
    const fail = (n: number) => {
      for (let i = 0; i < n; i++) c.report(c.endpoints[0]!, false);
    };
    return { pools, h, fail };
  };
  const ejectedForMs = (h: EndpointHealth) => h.ejectedUntil - Date.now();

  it("does not eject an endpoint again while it is ejected (panic-mode failures)", async () => {
    const { pools, h, fail } = setup();
    fail(2);
    expect(h.ejections).to.equal(1);
    const until = h.ejectedUntil;
    // every endpoint ejected: panic mode still sends it traffic, which keeps failing
    fail(40);
    expect(h.ejections).to.equal(1);
    expect(h.ejectedUntil).to.equal(until);
    await pools.destroy();
  });

  it("grows the ejection for an endpoint that fails again soon, and forgets old incidents", async () => {
    const { pools, h, fail } = setup();
    fail(2);
    expect(ejectedForMs(h)).to.be.within(900, 1000);
    // back only a moment: the second ejection is twice as long
    h.ejectedUntil = Date.now() - 10;
    fail(2);
    expect(h.ejections).to.equal(2);
    expect(ejectedForMs(h)).to.be.within(1900, 2000);
    // back for 5 base ejection times since: the multiplier decayed, this blip costs one base time
    h.ejectedUntil = Date.now() - 5000;
    fail(2);
    expect(h.ejections).to.equal(1);
    expect(ejectedForMs(h)).to.be.within(900, 1000);
    await pools.destroy();
  });
});
