// Every input that ever failed a fuzz property, replayed: test/fixtures/fuzz-regressions/<protocol>/
// holds one file per case (written by the fuzz specs and hack/fuzz/run.ts when they find one,
// or by hand), each checked by the same oracle that found it.
import { expect } from "chai";
import { startTarget } from "../../helpers/fuzz/target.ts";
import type { Target } from "../../helpers/fuzz/target.ts";
import { loadRegressions } from "../../helpers/fuzz/regressions.ts";
import type { Protocol } from "../../helpers/fuzz/regressions.ts";
import { HTTP1, HTTP2, TLS } from "../../helpers/fuzz/campaign.ts";
import type { Fuzzer } from "../../helpers/fuzz/campaign.ts";

const FUZZERS: Record<Protocol, Fuzzer<never>> = {
  http1: HTTP1 as unknown as Fuzzer<never>,
  h2: HTTP2 as unknown as Fuzzer<never>,
  tls: TLS as unknown as Fuzzer<never>,
};

describe("fuzz regressions: every case that ever failed, replayed", function () {
  this.timeout(30_000);
  let t: Target;

  before(async () => {
    t = await startTarget({ tls: true });
  });
  after(async () => {
    await t.close();
  });

  for (const protocol of ["http1", "h2", "tls"] as const) {
    const fz = FUZZERS[protocol];
    const cases = loadRegressions(protocol);
    describe(protocol, () => {
      for (const c of cases)
        it(`${c.name}${c.description ? `: ${c.description}` : ""}`, async () => {
          const input = fz.fromRegression(c.writes, c.meta);
          const outcome = await fz.run(t, input);
          expect(outcome.problems, fz.explain(input, outcome)).to.deep.equal([]);
          expect(await fz.canary(t)).to.equal(200);
        });
    });
  }
});
