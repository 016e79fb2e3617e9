// Compiler benchmark: compile time and heap for 100 / 1,000 / 5,000 HTTPRoutes across 50
// namespaces (each route: 2 rules with prefix + header matches, a filter, a backend Service with
// 3 endpoints), and whether time grows no worse than n·log n.
//
//   npm run bench:compile            prints the table and rewrites the Compiler section of docs/benchmarks.md
//   npm run bench:compile -- --no-write
import { compile } from "../../capabilities/compiler/index.ts";
import { writeBenchmarkSection } from "./lib.ts";
import type { Snapshot } from "../../capabilities/compiler/index.ts";

const NAMESPACES = 50;
const SIZES = [100, 1_000, 5_000];
const TARGET_MS_AT_5000 = 1_000;

export function syntheticSnapshot(routes: number): Snapshot {
  const namespaces = Array.from(
    { length: NAMESPACES },
    (_, i) => `ns-${String(i).padStart(2, "0")}`,
  );
  const snapshot: Snapshot = {
    gatewayClasses: [
      {
        metadata: { name: "rauta", generation: 1 },
        spec: { controllerName: "rauta.io/gateway-controller" },
      },
    ],
    gateways: [
      {
        metadata: { name: "gw", namespace: "infra", generation: 1 },
        spec: {
          gatewayClassName: "rauta",
          listeners: [
            {
              name: "http",
              port: 80,
              protocol: "HTTP",
              allowedRoutes: { namespaces: { from: "All" } },
            },
            {
              name: "apps",
              port: 80,
              protocol: "HTTP",
              hostname: "*.apps.example.com",
              allowedRoutes: {
                namespaces: { from: "Selector", selector: { matchLabels: { tier: "apps" } } },
              },
            },
          ],
        },
      },
    ],
    httpRoutes: [],
    referenceGrants: [],
    services: [],
    endpointSlices: [],
    secrets: [],
    namespaces: namespaces.map(name => ({ metadata: { name, labels: { tier: "apps" } } })),
    rautaPlugins: [],
  };
  for (let i = 0; i < routes; i++) {
    const namespace = namespaces[i % NAMESPACES]!;
    const service = `svc-${i}`;
    snapshot.httpRoutes.push({
      metadata: {
        name: `route-${i}`,
        namespace,
        generation: 1,
        creationTimestamp: `2026-01-01T00:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}Z`,
      },
      spec: {
        parentRefs: [{ name: "gw", namespace: "infra" }],
        // A tenth of the routes share a hostname, so virtual hosts hold many routes to sort.
        hostnames: [i % 10 === 0 ? "shared.example.com" : `host-${i}.apps.example.com`],
        rules: [
          {
            matches: [
              {
                path: { type: "PathPrefix", value: `/api/v${i % 7}/items-${i}` },
                headers: [{ name: "x-tenant", value: `t${i % 13}` }],
              },
            ],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-route", value: String(i) }] },
              },
            ],
            backendRefs: [{ name: service, port: 80 }],
          },
          {
            matches: [{ path: { type: "Exact", value: `/health-${i}` }, method: "GET" }],
            backendRefs: [{ name: service, port: 80, weight: 2 }],
          },
        ],
      },
    });
    snapshot.services.push({
      metadata: { name: service, namespace },
      spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] },
    });
    snapshot.endpointSlices.push({
      metadata: {
        name: `${service}-a`,
        namespace,
        labels: { "kubernetes.io/service-name": service },
      },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080 }],
      endpoints: [1, 2, 3].map(k => ({
        addresses: [`10.${(i >> 8) & 255}.${i & 255}.${k}`],
        conditions: { ready: true },
      })),
    });
  }
  return snapshot;
}

interface Row {
  routes: number;
  medianMs: number;
  minMs: number;
  heapMiB: number;
  configKiB: number;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function measure(routes: number): Row {
  const snapshot = syntheticSnapshot(routes);
  for (let i = 0; i < 2; i++) compile(snapshot); // warm up the JIT
  const times: number[] = [];
  const runs = routes >= 5_000 ? 5 : 9;
  let configBytes = 0;
  let heapMiB = 0;
  for (let i = 0; i < runs; i++) {
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const start = performance.now();
    const result = compile(snapshot);
    times.push(performance.now() - start);
    // Heap still held by the result (config + statuses), measured after a full GC.
    gc();
    heapMiB = Math.max(heapMiB, (process.memoryUsage().heapUsed - heapBefore) / 1_048_576);
    configBytes = JSON.stringify(result.config).length;
  }
  times.sort((a, b) => a - b);
  return {
    routes,
    medianMs: times[Math.floor(times.length / 2)]!,
    minMs: times[0]!,
    heapMiB,
    configKiB: configBytes / 1024,
  };
}

function growth(rows: Row[]): string[] {
  const lines: string[] = [];
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1]!, rows[i]!];
    const measured = b.medianMs / a.medianMs;
    const nlogn = (b.routes * Math.log(b.routes)) / (a.routes * Math.log(a.routes));
    lines.push(
      `${a.routes} → ${b.routes} routes: time ×${measured.toFixed(2)} (n·log n allows ×${nlogn.toFixed(2)}) — ${measured <= nlogn * 1.15 ? "within n·log n" : "WORSE than n·log n"}`,
    );
  }
  return lines;
}

if (import.meta.main) {
  if (!(globalThis as { gc?: unknown }).gc) {
    console.error("run with --expose-gc (npm run bench:compile does)");
    process.exit(2);
  }
  const rows = SIZES.map(measure);
  const table = [
    "| HTTPRoutes | median compile | fastest | heap held by result | config JSON |",
    "|---:|---:|---:|---:|---:|",
    ...rows.map(
      r =>
        `| ${r.routes.toLocaleString("en")} | ${r.medianMs.toFixed(1)} ms | ${r.minMs.toFixed(1)} ms | ${r.heapMiB.toFixed(1)} MiB | ${r.configKiB.toFixed(0)} KiB |`,
    ),
  ];
  const last = rows[rows.length - 1]!;
  const verdict = `Target: 5,000 routes in < ${TARGET_MS_AT_5000} ms — ${last.medianMs < TARGET_MS_AT_5000 ? "met" : "NOT met"} (${last.medianMs.toFixed(0)} ms median).`;
  const section = [
    "<!-- compiler-bench:start -->",
    "## Compiler",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on this project's machine (2 cores, Node ${process.version}) with \`npm run bench:compile\``,
    `(hack/bench/compile.ts: one Gateway with two listeners, routes spread over ${NAMESPACES} namespaces, two rules each, one Service with 3 endpoints per route).`,
    "",
    ...table,
    "",
    verdict,
    "",
    ...growth(rows).map(l => `- ${l}`),
    "<!-- compiler-bench:end -->",
  ].join("\n");
  console.log(section);
  if (!process.argv.includes("--no-write")) {
    console.log(`\nwrote ${writeBenchmarkSection("compiler-bench", section)}`);
  }
}
