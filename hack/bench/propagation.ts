// Control plane propagation on the local cluster (npm run bench:propagation):
//   1. kubectl patch of a route → first request served by the change, p50/p99 over 100 changes,
//      with a handful of routes and again with 1,000 existing routes;
//   2. kubectl apply of 1,000 HTTPRoutes in one go → the last one serving traffic, and → every
//      route Accepted in status;
//   3. kubectl apply of a new Gateway → Programmed True in its status, and a listener added to
//      it → Programmed True at the new observedGeneration, each 10 times, before and after (2).
// Runs the user's install first (npm run deploy:local). Writes docs/benchmarks.md (section
// between the propagation-bench markers) unless --no-write.
import { deployLocal, undeployLocal } from "../deploy/local.ts";
import { writeBenchmarkSection } from "./lib.ts";
import type { Cluster } from "../../test/integration/helpers/cluster.ts";
import { eventually, uniqueNamespace } from "../../test/integration/helpers/cluster.ts";
import { echoApp, httpGet } from "../../test/integration/helpers/workloads.ts";

const CHANGES = Number(process.env.PROPAGATION_CHANGES ?? 100);
const BULK = Number(process.env.PROPAGATION_ROUTES ?? 1000);
const GATEWAYS = Number(process.env.PROPAGATION_GATEWAYS ?? 10);

async function until(
  address: string,
  host: string,
  path: string,
  want: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await httpGet(address, 80, host, path)).status !== want) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${host}${path} to answer ${want}`);
    await new Promise(r => setTimeout(r, 2));
  }
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

function route(name: string, host: string, prefix: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}}
spec:
  parentRefs: [{name: gw}]
  hostnames: [${host}]
  rules: [{matches: [{path: {type: PathPrefix, value: ${prefix}}}], backendRefs: [{name: echo, port: 8080}]}]
`;
}

async function changes(
  k: Cluster,
  ns: string,
  address: string,
  label: string,
): Promise<{ label: string; p50: number; p99: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const prefix = `/${label}-${i}`;
    const start = performance.now();
    k.kubectl([
      "patch",
      "httproute",
      "probe",
      "-n",
      ns,
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "replace", path: "/spec/rules/0/matches/0/path/value", value: prefix },
      ]),
    ]);
    await until(address, "probe.example.com", prefix, 200);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { label, p50: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1)! };
}

interface GatewayState {
  metadata: { generation: number };
  status?: { conditions?: Array<{ type: string; status: string; observedGeneration?: number }> };
}

/** Apply → Programmed True (at the applied generation), as the suite's helpers wait for it. */
async function programmedTimes(
  k: Cluster,
  ns: string,
  label: string,
): Promise<{ create: number[]; modify: number[] }> {
  const gatewayYaml = (name: string, extra: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, port: 80, protocol: HTTP}${extra}
`;
  const programmedAt = async (name: string, generation: number) =>
    eventually(`Gateway ${name} Programmed at generation ${generation}`, 120_000, () => {
      const g = k.getJson<GatewayState>(["gateway", name, "-n", ns]);
      const c = g.status?.conditions?.find(x => x.type === "Programmed");
      return c?.status === "True" && (c.observedGeneration ?? 0) >= generation ? true : undefined;
    });
  const create: number[] = [];
  const modify: number[] = [];
  for (let i = 0; i < GATEWAYS; i++) {
    const name = `${label}-${i}`;
    let start = performance.now();
    k.apply(gatewayYaml(name, ""), ns);
    await programmedAt(name, 1);
    create.push(performance.now() - start);
    start = performance.now();
    k.apply(gatewayYaml(name, "\n  - {name: alt, port: 8080, protocol: HTTP}"), ns);
    await programmedAt(name, 2);
    modify.push(performance.now() - start);
    k.kubectl(["delete", "gateway", name, "-n", ns, "--wait=false"]);
  }
  return { create: create.sort((a, b) => a - b), modify: modify.sort((a, b) => a - b) };
}

async function main(): Promise<string> {
  const k = await deployLocal();
  const ns = uniqueNamespace("bench-prop");
  try {
    k.kubectl(["create", "namespace", ns]);
    k.apply(
      `${echoApp("echo")}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
${route("probe", "probe.example.com", "/warmup")}`,
      ns,
    );
    const address = await eventually("Gateway address", 120_000, () => {
      const gateway = k.getJson<{ status?: { addresses?: Array<{ value: string }> } }>([
        "gateway",
        "gw",
        "-n",
        ns,
      ]);
      return gateway.status?.addresses?.[0]?.value;
    });
    await until(address, "probe.example.com", "/warmup", 200, 120_000);
    const small = await changes(k, ns, address, "few");
    const gwFew = await programmedTimes(k, ns, "gw-few");

    const bulk = Array.from({ length: BULK }, (_, i) =>
      route(`bulk-${i}`, `bulk-${i}.example.com`, `/bulk-${i}`),
    ).join("---\n");
    const bulkStart = performance.now();
    k.kubectl(["apply", "-n", ns, "-f", "-"], bulk);
    const applied = performance.now() - bulkStart;
    await until(address, `bulk-${BULK - 1}.example.com`, `/bulk-${BULK - 1}`, 200, 300_000);
    const serving = performance.now() - bulkStart;
    await eventually("every route Accepted", 600_000, () => {
      const accepted = k
        .kubectl([
          "get",
          "httproute",
          "-n",
          ns,
          "-o",
          `jsonpath={range .items[*]}{.status.parents[*].conditions[?(@.type=="Accepted")].status}{"\\n"}{end}`,
        ])
        .split("\n")
        .filter(line => line.includes("True")).length;
      return accepted >= BULK + 1 ? true : undefined;
    });
    const allAccepted = performance.now() - bulkStart;
    const large = await changes(k, ns, address, "many");
    const gwMany = await programmedTimes(k, ns, "gw-many");

    const ms = (v: number) => `${v.toFixed(0)} ms`;
    return [
      "<!-- propagation-bench:start -->",
      "## Control plane propagation",
      "",
      `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (2 cores, shared) with \`npm run bench:propagation\``,
      "(hack/bench/propagation.ts): the user's install on hack/cluster (`npm run deploy:local`: Pepr watcher + admission pods,",
      "proxy DaemonSet), a change is a `kubectl patch` of an HTTPRoute's path; the clock stops at the first HTTP 200 on the new path",
      "through the proxy (polled every 2 ms). Includes kubectl's own start-up (about 100 ms of each figure).",
      "",
      `| scenario | changes | p50 | p99 | max |`,
      `|---|---:|---:|---:|---:|`,
      `| route change, 1 route | ${CHANGES} | ${ms(small.p50)} | ${ms(small.p99)} | ${ms(small.max)} |`,
      `| route change, ${BULK + 1} routes | ${CHANGES} | ${ms(large.p50)} | ${ms(large.p99)} | ${ms(large.max)} |`,
      "",
      `| ${BULK.toLocaleString("en")} HTTPRoutes in one \`kubectl apply\` | time |`,
      `|---|---:|`,
      `| kubectl apply returns | ${ms(applied)} |`,
      `| last route serving traffic | ${ms(serving)} |`,
      `| every route Accepted in status | ${ms(allAccepted)} |`,
      "",
      `Target p99 < 500 ms: ${small.p99 < 500 && large.p99 < 500 ? "met" : "NOT met"} (${ms(small.p99)} / ${ms(large.p99)}).`,
      "",
      `Gateway apply → \`Programmed: True\` at the applied observedGeneration (the condition the conformance suite waits for), ${GATEWAYS} Gateways each;`,
      "polled with `kubectl get` (about 100 ms per poll, part of each figure):",
      "",
      "| scenario | p50 | max |",
      "|---|---:|---:|",
      `| new Gateway, 1 route in the cluster | ${ms(percentile(gwFew.create, 50))} | ${ms(gwFew.create.at(-1)!)} |`,
      `| listener added, 1 route in the cluster | ${ms(percentile(gwFew.modify, 50))} | ${ms(gwFew.modify.at(-1)!)} |`,
      `| new Gateway, ${BULK + 1} routes in the cluster | ${ms(percentile(gwMany.create, 50))} | ${ms(gwMany.create.at(-1)!)} |`,
      `| listener added, ${BULK + 1} routes in the cluster | ${ms(percentile(gwMany.modify, 50))} | ${ms(gwMany.modify.at(-1)!)} |`,
      "<!-- propagation-bench:end -->",
    ].join("\n");
  } finally {
    k.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
    undeployLocal(k);
  }
}

if (import.meta.main) {
  const section = await main();
  console.log(section);
  if (!process.argv.includes("--no-write")) {
    console.log(`wrote ${writeBenchmarkSection("propagation-bench", section)}`);
  }
}
