import { expect } from "chai";
import { leaseAction } from "../../../capabilities/controller/leader.ts";

describe("leader election decisions", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");
  const lease = (
    holderIdentity: string | undefined,
    renewTime: string,
    leaseDurationSeconds = 15,
  ) => ({
    metadata: { resourceVersion: "7" },
    spec: { ...(holderIdentity ? { holderIdentity } : {}), renewTime, leaseDurationSeconds },
  });

  it("creates a missing Lease", () => expect(leaseAction(undefined, "a", now)).to.equal("create"));
  it("renews its own Lease", () =>
    expect(leaseAction(lease("a", "2026-01-01T00:00:59.000000Z"), "a", now)).to.equal("renew"));
  it("waits while another holder's Lease is fresh", () =>
    expect(leaseAction(lease("b", "2026-01-01T00:00:50.000000Z"), "a", now)).to.equal("wait"));
  it("takes over an expired Lease", () =>
    expect(leaseAction(lease("b", "2026-01-01T00:00:40.000000Z"), "a", now)).to.equal("takeover"));
  it("takes over a Lease nobody holds", () =>
    expect(leaseAction(lease(undefined, "2026-01-01T00:00:59.000000Z"), "a", now)).to.equal(
      "takeover",
    ));
});
