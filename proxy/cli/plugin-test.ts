// `rauta plugin test PLUGIN.wasm --request req.yaml [--config cfg.yaml]`: runs one plugin on one
// request with exactly the proxy's sandbox (the same load-time rewrite, limits, host functions
// and decision decoding) and prints what the proxy would do. A plugin author's inner loop.
import fs from "node:fs";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import type { Plugin } from "../config/schema.ts";
import { encodeInput } from "../plugins/abi.ts";
import type { Decision, Pairs, PluginInput } from "../plugins/abi.ts";
import { LoadedPlugin } from "../plugins/loaded-plugin.ts";
import { cutBody } from "../pipeline/step.ts";
import { ModuleError, ModuleStore } from "../plugins/modules.ts";
import { Metrics } from "../observability/metrics.ts";
import { createLogger } from "../observability/logger.ts";

export const TEST_USAGE = `usage: rauta plugin test PLUGIN.wasm --request req.yaml [options]

  --request <file>      the request (YAML): method, path, query, host, headers, client, route;
                        for --phase response also status and responseHeaders; metadata;
                        body (text) for a plugin with needsBody
  --config <file>       the plugin's spec.config (YAML or JSON)
  --phase <p>           request (default) or response
  --timeout-ms <n>      limits.timeoutMs (default 50)
  --memory-mib <n>      limits.memoryMiB (default 16)
  --max-body-bytes <n>  limits.maxBodyBytes: the plugin sees at most this much of body,
                        marked truncated past it (default 1048576)
  -o json               print the result as JSON
`;

const headerList = z
  .union([
    z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    z.array(z.tuple([z.string(), z.string()])),
  ])
  .optional()
  .transform((h): Pairs => {
    if (h === undefined) return [];
    if (Array.isArray(h)) return h.map(([k, v]) => [k.toLowerCase(), v]);
    return Object.entries(h).flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k.toLowerCase(), x]),
    );
  });

const RequestFile = z
  .object({
    method: z.string().default("GET"),
    scheme: z.enum(["http", "https"]).default("http"),
    host: z.string().default("example.com"),
    path: z.string().default("/"),
    query: z.string().default(""),
    client: z.string().default("127.0.0.1"),
    route: z.string().default("default/test/rule/0"),
    status: z.number().int().min(100).max(599).optional(),
    headers: headerList,
    responseHeaders: headerList,
    metadata: z.record(z.string(), z.string()).optional(),
    body: z.string().optional(),
  })
  .strict();

function render(d: Decision): string {
  if (d.action === "continue") return "CONTINUE";
  if (d.action === "reject") {
    const headers = d.headers.map(([k, v]) => `\n  ${k}: ${v}`).join("");
    return `REJECT ${d.status}${headers}\n\n${new TextDecoder().decode(d.body)}`;
  }
  return `MODIFY\n${d.ops.map(o => `  ${JSON.stringify(o)}`).join("\n")}`;
}

export async function runPluginTest(argv: string[]): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        request: { type: "string" },
        config: { type: "string" },
        phase: { type: "string" },
        "timeout-ms": { type: "string" },
        "memory-mib": { type: "string" },
        "max-body-bytes": { type: "string" },
        output: { type: "string", short: "o" },
      },
    }));
  } catch (err) {
    process.stderr.write(`rauta plugin test: ${(err as Error).message}\n${TEST_USAGE}`);
    return 2;
  }
  const file = positionals[0];
  if (!file || typeof values.request !== "string") {
    process.stderr.write(TEST_USAGE);
    return 2;
  }
  const phase = values.phase === "response" ? "response" : "request";
  let req: z.infer<typeof RequestFile>;
  let config: Record<string, unknown> = {};
  try {
    req = RequestFile.parse(parse(fs.readFileSync(values.request, "utf8")) ?? {});
    if (typeof values.config === "string")
      config = z
        .record(z.string(), z.unknown())
        .parse(parse(fs.readFileSync(values.config, "utf8")) ?? {});
  } catch (err) {
    const msg =
      err instanceof z.ZodError
        ? err.issues.map(i => `${i.path.join(".")}: ${i.message}`).join("; ")
        : (err as Error).message;
    process.stderr.write(`rauta plugin test: ${msg}\n`);
    return 2;
  }
  const spec: Plugin = {
    id: "test/plugin",
    source: { inline: "" },
    config,
    needsBody: req.body !== undefined,
    failurePolicy: "FailClosed",
    limits: {
      timeoutMs: Number(values["timeout-ms"] ?? 50),
      memoryMiB: Number(values["memory-mib"] ?? 16),
      maxBodyBytes: Number(values["max-body-bytes"] ?? 1_048_576),
    },
  };
  const store = new ModuleStore();
  let loaded: LoadedPlugin;
  try {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const { digest } = await store.bytesOf(
      { inline: Buffer.from(bytes).toString("base64") },
      undefined,
    );
    const compiled = await store.compile(bytes, digest, spec.limits.memoryMiB);
    loaded = new LoadedPlugin(spec, compiled, {
      metrics: new Metrics(undefined, false),
      logger: createLogger("warn"),
    });
    await loaded.warm();
  } catch (err) {
    const reason = err instanceof ModuleError ? `${err.reason}: ` : "";
    process.stderr.write(
      `rauta plugin test: the plugin does not load: ${reason}${(err as Error).message}\n`,
    );
    return 1;
  }
  if (phase === "response" ? !loaded.hasResponse : !loaded.hasRequest) {
    process.stdout.write(
      `the plugin exports no on_${phase}: the proxy does not call it in this phase (CONTINUE)\n`,
    );
    await loaded.close();
    return 0;
  }
  const input: PluginInput = {
    phase,
    method: req.method,
    scheme: req.scheme,
    authority: req.host,
    path: req.path,
    query: req.query,
    client: req.client,
    route: req.route,
    status: phase === "response" ? (req.status ?? 200) : 0,
    requestHeaders: req.headers.some(([k]) => k === "host")
      ? req.headers
      : [["host", req.host], ...req.headers],
    responseHeaders: phase === "response" ? req.responseHeaders : [],
    metadata: Object.entries(req.metadata ?? {}),
  };
  if (req.body !== undefined) {
    const body = { bytes: new TextEncoder().encode(req.body), truncated: false };
    const seen = cutBody(body, spec.limits.maxBodyBytes);
    input.body = seen.bytes;
    if (seen.truncated) input.bodyTruncated = true;
  }
  const t0 = performance.now();
  const outcome = await loaded.run(phase, encodeInput(input));
  const ms = performance.now() - t0;
  await loaded.close();
  if (values.output === "json") {
    process.stdout.write(
      `${JSON.stringify(outcome.ok ? { ok: true, ms, decision: outcome.decision } : { ms, ...outcome }, (_k, v: unknown) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v))}\n`,
    );
  } else if (outcome.ok)
    process.stdout.write(`${render(outcome.decision)}\n(${ms.toFixed(3)} ms)\n`);
  else
    process.stdout.write(
      `FAILURE (${outcome.reason}): ${outcome.message}\nthe proxy answers by failurePolicy: FailClosed → 500, FailOpen → skip the plugin\n`,
    );
  return outcome.ok ? 0 : 1;
}
