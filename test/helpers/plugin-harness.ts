// Running a built plugin module in a test the way the proxy runs it (PluginInstance with the real
// host functions, the host's codec for inputs and decisions), for the SDK specs: one harness per
// instance, every instance closed after the test (Extism's WASI opens /dev/null FileHandles per
// instance, and Node 26 throws, uncaught, when one is garbage-collected unclosed).
import { expect } from "chai";
import fs from "node:fs";
import { decodeDecision, encodeInput } from "../../proxy/plugins/abi.ts";
import type { Decision, Pairs, Phase, PluginInput } from "../../proxy/plugins/abi.ts";
import { KeyCache, RateLimitStore } from "../../proxy/plugins/host-functions.ts";
import { PluginCache } from "../../proxy/plugins/plugin-cache.ts";
import type { HostServices, LogLevel } from "../../proxy/plugins/host-functions.ts";
import { PluginInstance } from "../../proxy/plugins/sandbox.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "../../proxy/plugins/sandbox.ts";

export const LIMITS: SandboxLimits = { timeoutMs: 2000, fuel: Infinity, outputCapBytes: 1 << 20 };
/** the host's clock in these tests (now_ms) */
export const NOW = 1_700_000_000_123.5;

/** A module file as the proxy would hold it, unmetered (the SDK specs test the SDK, not fuel). */
export function compileFile(path: string, maxMemoryBytes: number): CompiledPlugin {
  const module = new WebAssembly.Module(fs.readFileSync(path));
  return {
    module,
    digest: "x",
    exports: new Set(
      WebAssembly.Module.exports(module)
        .filter(e => e.kind === "function")
        .map(e => e.name),
    ),
    wasi: WebAssembly.Module.imports(module).some(i => i.module === "wasi_snapshot_preview1"),
    metered: false,
    maxMemoryBytes,
  };
}

export interface Harness {
  instance: PluginInstance;
  logs: Array<[LogLevel, string]>;
  call(phase: Phase, input: Uint8Array): Promise<CallResult>;
  /** calls, expects success and decodes the decision */
  decide(phase: Phase, input: PluginInput): Promise<Decision>;
}

const open = new Set<PluginInstance>();

/** Closes every instance harness() opened (call it in afterEach). */
export async function closeHarnesses(): Promise<void> {
  await Promise.all([...open].map(i => i.close()));
  open.clear();
}

/** configJson as the proxy makes it: JSON.stringify(spec.config), an object, "{}" at least */
export async function harness(plugin: CompiledPlugin, configJson = "{}"): Promise<Harness> {
  const logs: Array<[LogLevel, string]> = [];
  const services: HostServices = {
    log: (level, message) => logs.push([level, message]),
    rateLimits: new RateLimitStore(),
    keys: new KeyCache(),
    cache: new PluginCache(),
    now: () => NOW,
  };
  const instance = await PluginInstance.create(plugin, { configJson, services });
  open.add(instance);
  const call = async (phase: Phase, input: Uint8Array) => instance.call(phase, input, LIMITS);
  return {
    instance,
    logs,
    call,
    async decide(phase, input) {
      const res = await call(phase, encodeInput(input));
      if (!res.ok) expect.fail(`${phase} failed (${res.reason}): ${res.message}`);
      return decodeDecision(res.output, phase);
    },
  };
}

export function request(over: Partial<PluginInput> = {}): PluginInput {
  return {
    phase: "request",
    method: "GET",
    scheme: "http",
    authority: "api.example.com",
    path: "/users/42",
    query: "",
    client: "127.0.0.1",
    route: "default/api/rule/0",
    status: 0,
    requestHeaders: [["host", "api.example.com"]],
    responseHeaders: [],
    metadata: [],
    ...over,
  };
}

export function withHeaders(headers: Pairs, over: Partial<PluginInput> = {}): PluginInput {
  return request({ ...over, requestHeaders: [["host", "api.example.com"], ...headers] });
}

/** Runs `phase` `n` times on one input after `warmup` calls (tier-up, a guest runtime); µs per call. */
export async function microsPerCall(
  h: Harness,
  phase: Phase,
  input: Uint8Array,
  n: number,
  warmup = 200,
): Promise<number> {
  for (let i = 0; i < warmup; i++) await h.call(phase, input);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const res = await h.call(phase, input);
    if (!res.ok) expect.fail(`call ${i} failed: ${res.message}`);
  }
  return ((performance.now() - t0) * 1000) / n;
}
