// The official Gateway API conformance suite (v1.6.3: GATEWAY-HTTP, GATEWAY-GRPC and
// GATEWAY-TLS in one run, one report) on every CI run, on the
// standard-channel CRDs and then on the experimental ones (where HTTPRoute retry exists), exactly as
// `npm run conformance` runs it: RAUTA deployed as a user deploys it, the features read from
// GatewayClass rauta's status.supportedFeatures. What the committed report
// (docs/conformance/) says must stay true: the same features claimed, every core test and every
// test of a claimed feature passing.
import { expect } from "chai";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import {
  PROFILES,
  defaultReport,
  reportName,
  runConformance,
  summarize,
} from "../../hack/conformance/run.ts";
import type { Report } from "../../hack/conformance/run.ts";
import {
  installGatewayApiCrds,
  namespacesSettled,
  undeployLocal,
} from "../../hack/deploy/local.ts";
import type { GatewayApiChannel } from "../../hack/deploy/local.ts";
import { clusterHandle } from "./helpers/cluster.ts";

// core tests per profile in suite v1.6.3 (../shared/notes/conformance-anchors-tests-v1.6.3.tsv)
const CORE_TESTS: Record<(typeof PROFILES)[number], number> = {
  "GATEWAY-HTTP": 36,
  "GATEWAY-GRPC": 14,
  "GATEWAY-TLS": 19,
};

describe("Gateway API conformance suite v1.6.3: GATEWAY-HTTP, GATEWAY-GRPC, GATEWAY-TLS", function () {
  this.timeout(60 * 60_000);
  // as control-plane.spec: the next suites expect no RAUTA install claiming pool addresses
  // and the cluster's CRDs as it started, standard channel
  after(async () => {
    undeployLocal();
    await namespacesSettled();
    installGatewayApiCrds(clusterHandle(), "standard");
  });

  // standard first: experimental CRDs cannot be replaced by standard ones without a reinstall
  for (const channel of ["standard", "experimental"] as GatewayApiChannel[])
    it(`${channel} channel: passes every core test and every test of the features RAUTA claims, as the committed report says`, async () => {
      await check(channel);
    });

  async function check(channel: GatewayApiChannel): Promise<void> {
    const report = join(mkdtempSync(join(tmpdir(), "rauta-conformance-")), reportName(channel));
    const r = await runConformance({ report, channel });
    const summary = summarize(r);
    process.stderr.write(`${summary}\n`);
    expect(r.report, `no report: ${summary}`).to.not.equal(null);
    expect(r.failedTests, summary).to.deep.equal([]);
    expect(r.exitCode, summary).to.equal(0);
    expect(r.report!.gatewayAPIChannel).to.equal(channel);
    const committed = parse(readFileSync(defaultReport(channel), "utf8")) as Report;
    for (const name of PROFILES) {
      const profile = (r.report!.profiles ?? []).find(p => p.name === name);
      expect(profile, `${name} in the report`).to.not.equal(undefined);
      expect(profile!.core.result, `${name}: ${summary}`).to.equal("success");
      expect(profile!.core.statistics, `${name}: ${summary}`).to.deep.equal({
        Passed: CORE_TESTS[name],
        Failed: 0,
        Skipped: 0,
      });
      expect(profile!.extended?.statistics.Failed ?? 0, `${name}: ${summary}`).to.equal(0);
      const mine = (committed.profiles ?? []).find(p => p.name === name);
      expect(mine, `${name} in the committed report`).to.not.equal(undefined);
      expect(
        [...(profile!.extended?.supportedFeatures ?? [])].sort(),
        `${name}: the features claimed are those of docs/conformance (npm run conformance rewrites it)`,
      ).to.deep.equal([...(mine!.extended?.supportedFeatures ?? [])].sort());
      expect(profile!.core.statistics).to.deep.equal(mine!.core.statistics);
    }
  }
});
