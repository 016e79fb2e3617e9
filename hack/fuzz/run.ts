// A longer, time-boxed fuzzing run on this machine (the unit suite runs a small fixed-seed one):
//
//   node hack/fuzz/run.ts --minutes 10 [--protocols http1,h2,tls] [--seed 42] [--batch 200]
//
// Starts the same target as the specs (a Proxy in this process, 127.0.0.1 only, backends that
// record what reaches them), then runs batches of cases until the time is up: HTTP/1.1 and
// HTTP/2 take turns (they share the recording backends), TLS runs alongside (its cases wait for
// the server to drop unfinished handshakes). Batches aim at --batch-seconds each. Prints cases
// and throughput per protocol; every failing case is shrunk and written to
// test/fixtures/fuzz-regressions/<protocol>/ (replayed by test/unit/fuzz/regressions.spec.ts).
// Exits 1 when anything was found.
import { parseArgs } from "node:util";
import { startTarget, MB } from "../../test/helpers/fuzz/target.ts";
import { campaign, HTTP1, HTTP2, TLS } from "../../test/helpers/fuzz/campaign.ts";
import type { Fuzzer, CampaignResult } from "../../test/helpers/fuzz/campaign.ts";
import type { Protocol } from "../../test/helpers/fuzz/regressions.ts";
import { DEFAULT_SEED } from "../../test/helpers/fuzz/settings.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "5" },
    protocols: { type: "string", default: "http1,h2,tls" },
    seed: { type: "string", default: String(DEFAULT_SEED + 1000) },
    "batch-seconds": { type: "string", default: "5" },
    "no-save": { type: "boolean", default: false },
  },
});

const FUZZERS: Record<Protocol, Fuzzer<never>> = {
  http1: HTTP1 as unknown as Fuzzer<never>,
  h2: HTTP2 as unknown as Fuzzer<never>,
  tls: TLS as unknown as Fuzzer<never>,
};
const protocols = values.protocols.split(",").map(p => p.trim()) as Protocol[];
for (const p of protocols)
  if (!(p in FUZZERS)) throw new Error(`unknown protocol ${p} (http1, h2, tls)`);
const deadline = Date.now() + Number(values.minutes) * 60_000;
const seed = Number(values.seed);
const batchSeconds = Number(values["batch-seconds"]);
// cases per batch: from the rate measured so far (a first guess before that)
const rate = new Map<Protocol, number>([
  ["http1", 150],
  ["h2", 50],
  ["tls", 10],
]);
const batchOf = (p: Protocol) => Math.max(10, Math.round(rate.get(p)! * batchSeconds));

let crashes = 0;
process.on("uncaughtException", err => {
  crashes++;
  console.error("UNCAUGHT (the proxy would have crashed):", err);
});

interface Totals {
  cases: number;
  ms: number;
  batches: number;
  failures: string[];
  canaries: number;
  canaryFailures: number;
}
const totals = new Map<Protocol, Totals>(
  protocols.map(p => [
    p,
    { cases: 0, ms: 0, batches: 0, failures: [], canaries: 0, canaryFailures: 0 },
  ]),
);

const target = await startTarget({ tls: protocols.includes("tls") });
const start = { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
console.log(
  `fuzzing ${protocols.join(", ")} for ${values.minutes} min from seed ${seed} (proxy on 127.0.0.1:${target.port}${target.tlsPort ? `, TLS :${target.tlsPort}` : ""})`,
);
let batch = 0;
async function lane(ps: Protocol[]) {
  while (ps.length > 0)
    for (const p of ps) {
      if (Date.now() >= deadline) return;
      const s = seed + batch++;
      const r: CampaignResult = await campaign(FUZZERS[p], target, {
        numRuns: batchOf(p),
        seed: s,
        save: !values["no-save"],
        found: `node hack/fuzz/run.ts --seed ${seed}: ${p} batch seed ${s}`,
      });
      rate.set(p, r.cases / (r.ms / 1000));
      const tot = totals.get(p)!;
      tot.cases += r.cases;
      tot.ms += r.ms;
      tot.batches++;
      tot.canaries += r.canaries.sent;
      tot.canaryFailures += r.canaries.failed;
      if (r.failure !== null) {
        tot.failures.push(r.failure.file ?? "(not saved)");
        console.log(
          `\n${p}: FOUND (seed ${s})\n${r.failure.explanation}\n  saved: ${r.failure.file ?? "no"}\n`,
        );
      }
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      console.log(
        `${p.padEnd(5)} batch seed ${s}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s` +
          ` (${Math.round(r.cases / (r.ms / 1000))}/s), heap ${Math.round(r.memoryAfter.heapUsed / MB)} MB, ${left} s left`,
      );
    }
}
const t0 = Date.now();
await Promise.all([
  lane(protocols.filter(p => p !== "tls")),
  lane(protocols.filter(p => p === "tls")),
]);
const wall = (Date.now() - t0) / 1000;
await target.close();

const end = process.memoryUsage();
console.log(
  `\n${wall.toFixed(0)} s wall clock\nprotocol  cases  seconds  cases/s  found  canaries (failed)`,
);
let found = 0;
for (const [p, t] of totals) {
  found += t.failures.length;
  console.log(
    `${p.padEnd(8)}  ${String(t.cases).padStart(5)}  ${(t.ms / 1000).toFixed(0).padStart(7)}  ${(t.cases / (t.ms / 1000 || 1)).toFixed(1).padStart(7)}  ${String(t.failures.length).padStart(5)}  ${t.canaries} (${t.canaryFailures})`,
  );
  for (const f of t.failures) console.log(`          ${f}`);
}
console.log(
  `memory: heap ${Math.round(start.heap / MB)} → ${Math.round(end.heapUsed / MB)} MB, rss ${Math.round(start.rss / MB)} → ${Math.round(end.rss / MB)} MB; uncaught exceptions: ${crashes}`,
);
process.exit(
  found > 0 || crashes > 0 || [...totals.values()].some(t => t.canaryFailures > 0) ? 1 : 0,
);
