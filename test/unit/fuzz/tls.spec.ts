// TLS fuzzing on an HTTPS listener: ClientHellos built byte by byte with SNI edge cases
// (empty, long, IP literal, non-ASCII, several entries, none), truncated, fragmented and mutated
// hellos, garbage and plain HTTP (tls-hello.ts), checked by tls-check.ts. Fixed seed by default; RAUTA_FUZZ_RUNS / RAUTA_FUZZ_SEED
// for longer or other runs. A failing case is shrunk and saved under
// test/fixtures/fuzz-regressions/tls/, where regressions.spec.ts replays it from then on.
import { expect } from "chai";
import { startTarget, MB } from "../../helpers/fuzz/target.ts";
import type { Target } from "../../helpers/fuzz/target.ts";
import { campaign, TLS } from "../../helpers/fuzz/campaign.ts";
import type { CampaignResult } from "../../helpers/fuzz/campaign.ts";
import { fuzzSettings } from "../../helpers/fuzz/settings.ts";

const settings = fuzzSettings(150);

describe(`fuzz: TLS handshakes (${settings.numRuns} ClientHellos, seed ${settings.seed})`, function () {
  this.timeout(180_000);
  let t: Target;
  let r: CampaignResult;

  before(async () => {
    t = await startTarget({ tls: true });
    r = await campaign(TLS, t, {
      ...settings,
      found: `test/unit/fuzz/tls.spec.ts, seed ${settings.seed}`,
    });
  });
  after(async () => {
    await t.close();
  });

  it("answers every hello with a handshake or an alert (never other bytes), drops unfinished ones within the header timeout, picks the certificate by SNI", () => {
    expect(
      r.failure,
      r.failure === null ? "" : `${r.failure.explanation}\nsaved as ${r.failure.file}`,
    ).to.equal(null);
    expect(r.cases).to.be.at.least(settings.numRuns);
  });

  it("keeps serving valid TLS clients during the run", () => {
    // (a run stopped early by a failing case may not have reached its first canary)
    if (r.failure === null) expect(r.canaries.sent).to.be.greaterThan(0);
    expect(r.canaries.failed).to.equal(0);
  });

  it("holds memory: the heap after the run is within 64 MB of the heap before", () => {
    expect(r.memoryAfter.heapUsed - r.memoryBefore.heapUsed).to.be.below(64 * MB);
    expect(r.memoryAfter.rss - r.memoryBefore.rss).to.be.below(256 * MB);
  });
});
