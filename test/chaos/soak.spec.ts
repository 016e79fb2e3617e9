// A short soak (hack/soak/run.ts; SOAK_MINUTES, default 3 here): steady load on
// `rauta serve --workers 1` with a config change every second and endpoint churn. No request may
// fail, memory and descriptors must not grow, the event loop must keep up.
import { expect } from "chai";
import { checkSoak, runSoak, soakMarkdown, soakOptions } from "../../hack/soak/run.ts";

describe("soak: config swaps every second and endpoint churn under load", function () {
  const options = soakOptions({ SOAK_MINUTES: "3", ...process.env });
  this.timeout(options.minutes * 60_000 + 180_000);

  it(`serves ${options.minutes} minutes without a failure, a leak or a stalled event loop`, async () => {
    const result = await runSoak(options);
    process.stderr.write(`${soakMarkdown(result)}\n`);
    expect(checkSoak(result)).to.deep.equal([]);
  });
});
