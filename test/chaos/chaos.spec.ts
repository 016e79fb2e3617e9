// The bounded chaos suite (hack/chaos/scenarios.ts): RAUTA (`rauta serve --workers 1`) →
// toxiproxy (built from its Go module on first use) → three Node backends under steady load,
// one fault per scenario (~3 minutes in all). Each scenario's checks: clients only ever see the
// statuses the fault explains, retries absorb what can be retried, nothing waits past its
// timeouts, RAUTA recovers, and its worker's memory and sockets come back.
import { expect } from "chai";
import { check, checkReport, markdown, runChaos, scenarios } from "../../hack/chaos/scenarios.ts";
import type { ChaosReport } from "../../hack/chaos/scenarios.ts";

describe("chaos: RAUTA → toxiproxy → backends under load", function () {
  this.timeout(600_000);
  let report: ChaosReport | null = null;
  let failure: Error | null = null;

  before(async function () {
    try {
      report = await runChaos();
      process.stderr.write(`${markdown(report)}\n`);
    } catch (err) {
      failure = err as Error;
    }
  });

  for (const s of scenarios())
    it(`${s.id}: ${s.title}`, () => {
      if (failure) throw failure;
      const r = report!.results.find(x => x.id === s.id);
      expect(r, "scenario result").to.not.equal(undefined);
      expect(check(r!)).to.deep.equal([]);
    });

  it("every socket is gone and memory is back at the end of the run", () => {
    if (failure) throw failure;
    expect(checkReport(report!)).to.deep.equal([]);
  });
});
