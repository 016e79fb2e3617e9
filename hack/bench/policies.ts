// Policy benchmark (`npm run bench:policies`): what BackendTrafficPolicies cost on the request
// path, in one run, against the same route without one. Each target is `rauta serve --workers 1`
// on Gateway API YAML in front of one nginx upstream (`return 200`), loaded with `wrk -t1 -c50`;
// rounds are interleaved and the best round per target is reported.
//   - no policy
//   - a local rate limit that never triggers (per client address, 10^9 per second)
//   - every section at once: that rate limit, least-request balancing, a circuit breaker and
//     active (every 1s) and passive health checks
// Writes docs/benchmarks.md between the policy-bench markers.
//   npm run bench:policies                BENCH_DURATION=5 BENCH_ROUNDS=3 by default
//   npm run bench:policies -- --no-write
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../test/helpers/net.ts";
import { CONNECTIONS, DURATION, ensureTools, kill, writeBenchmarkSection } from "./lib.ts";
import {
  benchGatewayYaml,
  roundsLine,
  runRounds,
  serveTarget,
  startNginxUpstream,
  upstreamYaml,
} from "./serve-target.ts";
import type { Rounds, ServeTarget } from "./serve-target.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const write = !process.argv.includes("--no-write");

const NEVER_LIMITS = `  rateLimit:
    local: { requests: 1000000000, unit: Second, key: { type: ClientIP } }`;
const EVERYTHING = `${NEVER_LIMITS}
  loadBalancer: { type: LeastRequest }
  circuitBreaker: { errorPercent: 50, minRequests: 20 }
  healthCheck:
    active: { type: HTTP, http: { path: / }, interval: 1s, timeout: 500ms }
    passive: { consecutiveFailures: 5 }`;

function gatewayYaml(port: number, upstream: number, policy: string | null): string {
  const docs = [
    benchGatewayYaml(port),
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bench, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  rules:
    - name: main
      backendRefs: [{ name: up, port: 80 }]`,
    upstreamYaml(upstream),
  ];
  if (policy !== null)
    docs.push(`apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: bench, namespace: default }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, name: bench, sectionName: main }]
${policy}`);
  return `${docs.join("\n---\n")}\n`;
}

async function main() {
  ensureTools();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-bench-policies-"));
  const up = await freePort();
  const upstream = await startNginxUpstream(tmp, up);
  const yaml = (policy: string | null) => (port: number) => gatewayYaml(port, up, policy);
  const targets: ServeTarget[] = [
    await serveTarget(tmp, "no policy", yaml(null)),
    await serveTarget(tmp, "rate limit that never triggers", yaml(NEVER_LIMITS)),
    await serveTarget(
      tmp,
      "every section (rate limit, least-request, breaker, health checks)",
      yaml(EVERYTHING),
    ),
  ];
  let measuredRounds: Rounds;
  try {
    measuredRounds = await runRounds(targets, ROUNDS);
  } finally {
    await kill(upstream);
  }
  const { best, rps: rounds } = measuredRounds;
  const base = best.get("no policy")!;
  const ratio = (name: string) => best.get(name)!.rps / base.rps;
  const cpuRatio = (name: string) => best.get(name)!.cpuUsPerReq / base.cpuUsPerReq;
  const judge = (ok: boolean) => (ok ? "met" : "NOT met");
  const never = ratio("rate limit that never triggers");
  const text = [
    "<!-- policy-bench:start -->",
    "## Policies",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (${os.cpus().length} cores, shared; Node ${process.version}) with`,
    `\`BENCH_DURATION=${DURATION} BENCH_ROUNDS=${ROUNDS} npm run bench:policies\` (hack/bench/policies.ts). Upstream: nginx \`return 200\`, 100-byte body.`,
    `Every target is \`rauta serve --workers 1\` on Gateway API YAML, one route rule with a BackendTrafficPolicy on it (or none), \`wrk -t1 -c${CONNECTIONS} -d${DURATION}s --latency\`; best of ${ROUNDS} interleaved rounds; CPU and RSS are the serving worker's.`,
    "",
    "| target | rps | p50 | p99 | CPU/req | peak RSS | ÷ no policy | CPU ÷ no policy |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...targets.map(t => {
      const r = best.get(t.name)!;
      return `| ${t.name} | ${Math.round(r.rps).toLocaleString("en-US")} | ${r.p50} | ${r.p99} | ${r.cpuUsPerReq.toFixed(1)} µs | ${r.peakMb.toFixed(0)} MB | ${ratio(t.name).toFixed(2)}× | ${cpuRatio(t.name).toFixed(2)}× |`;
    }),
    "",
    `- a rate limit that never triggers: ${never.toFixed(2)}× the rps without a policy (target ≥ 0.95×) — ${judge(never >= 0.95)}`,
    "",
    roundsLine(targets, rounds),
    "<!-- policy-bench:end -->",
  ].join("\n");
  console.log(text);
  if (write) {
    writeBenchmarkSection("policy-bench", text);
    console.error("bench: wrote docs/benchmarks.md");
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
