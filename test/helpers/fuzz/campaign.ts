// One fuzzing campaign = one protocol's cases run against a target as a fast-check property:
// each case must come back without problems, a valid request on its own connection (the canary)
// is sent alongside every few cases and must get its 200, and a failing case is shrunk, explained
// and saved as a regression file. Used by the unit specs (fixed seed, bounded runs) and by
// hack/fuzz/run.ts (time-boxed).
import fc from "fast-check";
import { saveRegression } from "./regressions.ts";
import type { Protocol } from "./regressions.ts";
import type { Target } from "./target.ts";
import { memory } from "./target.ts";
import type { MemorySample } from "./target.ts";
import { h1Case } from "./http1-grammar.ts";
import type { H1Case } from "./http1-grammar.ts";
import { runH1Case, explainH1 } from "./http1-check.ts";
import { h2Case } from "./h2-grammar.ts";
import type { H2Case } from "./h2-grammar.ts";
import { runH2Case, explainH2, h2Canary } from "./h2-check.ts";
import { tlsCase } from "./tls-hello.ts";
import type { TlsCase } from "./tls-hello.ts";
import { runTlsCase, explainTls, tlsCanary } from "./tls-check.ts";
import { talk } from "./http1-wire.ts";

export interface Fuzzer<C> {
  protocol: Protocol;
  arbitrary: fc.Arbitrary<C>;
  run(t: Target, c: C): Promise<{ problems: string[] }>;
  explain(c: C, outcome: { problems: string[] }): string;
  writes(c: C): Buffer[];
  /** what the oracle needs besides the bytes when the case is replayed */
  meta(c: C): Record<string, unknown>;
  /** rebuilds a case from a regression file */
  fromRegression(writes: Buffer[], meta: Record<string, unknown>): C;
  /** a valid request on its own connection: its status */
  canary(t: Target): Promise<number>;
}

async function h1Canary(t: Target): Promise<number> {
  const r = await talk(t.port, "GET /canary HTTP/1.1\r\nHost: canary.test\r\n\r\n", {
    expect: 1,
    timeoutMs: 3000,
    graceMs: 0,
  });
  return r.responses[0]?.status ?? 0;
}

export const HTTP1: Fuzzer<H1Case> = {
  protocol: "http1",
  arbitrary: h1Case,
  run: runH1Case,
  explain: (c, o) => explainH1(c, o as Awaited<ReturnType<typeof runH1Case>>),
  writes: c => c.writes,
  meta: () => ({}),
  fromRegression: writes => ({ writes }),
  canary: h1Canary,
};

export const HTTP2: Fuzzer<H2Case> = {
  protocol: "h2",
  arbitrary: h2Case,
  run: runH2Case,
  explain: (c, o) => explainH2(c, o as Awaited<ReturnType<typeof runH2Case>>),
  writes: c => c.writes,
  meta: c => ({ validStreams: c.validStreams, checkBad: c.checkBad }),
  fromRegression: (writes, meta) => ({
    writes,
    validStreams: typeof meta.validStreams === "number" ? meta.validStreams : 0,
    checkBad: meta.checkBad === true,
  }),
  canary: t => h2Canary(t.port),
};

export const TLS: Fuzzer<TlsCase> = {
  protocol: "tls",
  arbitrary: tlsCase,
  run: runTlsCase,
  explain: (c, o) => explainTls(c, o as Awaited<ReturnType<typeof runTlsCase>>),
  writes: c => c.writes,
  meta: c => ({ sni: c.sni, complete: c.complete, tls12: c.tls12 }),
  fromRegression: (writes, meta) => ({
    writes,
    sni: typeof meta.sni === "string" ? meta.sni : null,
    complete: meta.complete === true,
    tls12: meta.tls12 === true,
  }),
  canary: t => tlsCanary(t.tlsPort),
};

export interface CampaignResult {
  protocol: Protocol;
  cases: number;
  ms: number;
  /** explanation of the shrunk counterexample and where it was saved */
  failure: { explanation: string; file: string | null } | null;
  canaries: { sent: number; failed: number };
  memoryBefore: MemorySample;
  memoryAfter: MemorySample;
}

export interface CampaignOptions {
  numRuns: number;
  seed: number;
  /** a canary alongside every n-th case */
  canaryEvery?: number;
  /** write the shrunk failing case under test/fixtures/fuzz-regressions */
  save?: boolean;
  /** a note for the regression file (e.g. the command that found it) */
  found?: string;
}

export async function campaign<C>(
  fz: Fuzzer<C>,
  t: Target,
  o: CampaignOptions,
): Promise<CampaignResult> {
  const memoryBefore = memory();
  const t0 = performance.now();
  let cases = 0;
  const canaries = { sent: 0, failed: 0 };
  // what each failing case said when it failed (a re-run may not reproduce a timing-dependent one)
  const seen = new Map<C, string[]>();
  const every = o.canaryEvery ?? 25;
  const result = await fc.check(
    fc.asyncProperty(fz.arbitrary, async c => {
      cases++;
      const canary = cases % every === 0 ? fz.canary(t) : null;
      const outcome = await fz.run(t, c);
      if (canary !== null) {
        canaries.sent++;
        if ((await canary) !== 200) canaries.failed++;
      }
      if (outcome.problems.length > 0) seen.set(c, outcome.problems);
      return outcome.problems.length === 0;
    }),
    { numRuns: o.numRuns, seed: o.seed, endOnFailure: false },
  );
  let failure: CampaignResult["failure"] = null;
  if (result.failed && result.counterexample !== null) {
    const c = result.counterexample[0];
    let outcome = await fz.run(t, c);
    let note = "";
    if (outcome.problems.length === 0) {
      outcome = { ...outcome, problems: seen.get(c) ?? ["(not recorded)"] };
      note = "\n  (did not fail again when re-run: timing-dependent)";
    }
    const explanation = `${fz.explain(c, outcome)}${note}\n  (seed ${o.seed}, path ${result.counterexamplePath ?? ""})`;
    const file =
      o.save === false
        ? null
        : saveRegression(
            fz.protocol,
            fz.writes(c),
            outcome.problems,
            o.found ?? `seed ${o.seed}`,
            "",
            undefined,
            fz.meta(c),
          );
    failure = { explanation, file };
  } else if (result.failed)
    failure = { explanation: String(result.errorInstance ?? "property failed"), file: null };
  return {
    protocol: fz.protocol,
    cases,
    ms: performance.now() - t0,
    failure,
    canaries,
    memoryBefore,
    memoryAfter: memory(),
  };
}
