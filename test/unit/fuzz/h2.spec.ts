// HTTP/2 fuzzing over raw h2c connections: well-formed requests mixed with malformed and
// out-of-order frames, bad HPACK and bombs, oversized header lists, CONTINUATION floods and
// RST/SETTINGS/PING/WINDOW_UPDATE abuse (h2-grammar.ts), checked by h2-check.ts. Fixed seed by default; RAUTA_FUZZ_RUNS / RAUTA_FUZZ_SEED
// for longer or other runs. A failing case is shrunk and saved under
// test/fixtures/fuzz-regressions/h2/, where regressions.spec.ts replays it from then on.
import { expect } from "chai";
import { startTarget, MB } from "../../helpers/fuzz/target.ts";
import type { Target } from "../../helpers/fuzz/target.ts";
import { campaign, HTTP2 } from "../../helpers/fuzz/campaign.ts";
import type { CampaignResult } from "../../helpers/fuzz/campaign.ts";
import { fuzzSettings } from "../../helpers/fuzz/settings.ts";

const settings = fuzzSettings(500);

describe(`fuzz: HTTP/2 frames on h2c (${settings.numRuns} connections, seed ${settings.seed})`, function () {
  this.timeout(180_000);
  let t: Target;
  let r: CampaignResult;

  before(async () => {
    t = await startTarget();
    r = await campaign(HTTP2, t, {
      ...settings,
      found: `test/unit/fuzz/h2.spec.ts, seed ${settings.seed}`,
    });
  });
  after(async () => {
    await t.close();
  });

  it("ends every abusive connection (GOAWAY or close) or keeps answering PING on it, never forwards a malformed request or a field HTTP/1.1 cannot carry", () => {
    expect(
      r.failure,
      r.failure === null ? "" : `${r.failure.explanation}\nsaved as ${r.failure.file}`,
    ).to.equal(null);
    expect(r.cases).to.be.at.least(settings.numRuns);
  });

  it("keeps serving valid requests sent on other connections during the run", () => {
    // (a run stopped early by a failing case may not have reached its first canary)
    if (r.failure === null) expect(r.canaries.sent).to.be.greaterThan(0);
    expect(r.canaries.failed).to.equal(0);
  });

  it("holds memory: the heap after the run is within 64 MB of the heap before", () => {
    expect(r.memoryAfter.heapUsed - r.memoryBefore.heapUsed).to.be.below(64 * MB);
    expect(r.memoryAfter.rss - r.memoryBefore.rss).to.be.below(256 * MB);
  });
});
