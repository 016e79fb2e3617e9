// Running the AssemblyScript plugins in tests the way the proxy runs them: built once per test
// run (hack/plugins/build.ts skips what is up to date), loaded as a CompiledPlugin, called
// through PluginInstance with the real host functions, answers decoded by the host's codec.
import fs from "node:fs";
import { createHash } from "node:crypto";
import { buildPlugins } from "../../../hack/plugins/build.ts";
import type { BuiltPlugin } from "../../../hack/plugins/build.ts";
import { PluginInstance } from "../../../proxy/plugins/sandbox.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "../../../proxy/plugins/sandbox.ts";
import { KeyCache, RateLimitStore } from "../../../proxy/plugins/host-functions.ts";
import type { CallState, HostServices, LogLevel } from "../../../proxy/plugins/host-functions.ts";
import { PluginCache } from "../../../proxy/plugins/plugin-cache.ts";
import { decodeDecision, encodeInput } from "../../../proxy/plugins/abi.ts";
import type { Decision, Pairs, Phase, PluginInput } from "../../../proxy/plugins/abi.ts";

let built: Promise<Map<string, BuiltPlugin>> | null = null;

/** Every plugin module, built (or found up to date) once per process. */
export function plugins(): Promise<Map<string, BuiltPlugin>> {
  built ??= buildPlugins().then(list => new Map(list.map(p => [p.name, p])));
  return built;
}

export async function compiled(name: string): Promise<CompiledPlugin> {
  const p = (await plugins()).get(name);
  if (p === undefined) throw new Error(`no plugin ${name}`);
  const bytes = fs.readFileSync(p.path);
  const module = new WebAssembly.Module(bytes);
  return {
    module,
    digest: createHash("sha256").update(bytes).digest("hex"),
    exports: new Set(
      WebAssembly.Module.exports(module)
        .filter(e => e.kind === "function")
        .map(e => e.name),
    ),
    wasi: false,
    metered: false,
    maxMemoryBytes: 16 << 20,
  };
}

export interface LogLine {
  level: LogLevel;
  message: string;
}

/** Host services with a clock the test can move and the plugin's log lines collected. */
export class TestHost implements HostServices {
  readonly logs: LogLine[] = [];
  rateLimits = new RateLimitStore();
  keys = new KeyCache();
  cache = new PluginCache();
  clock = 1_700_000_000_000;
  log(level: LogLevel, message: string): void {
    this.logs.push({ level, message });
  }
  now(): number {
    return this.clock;
  }
}

export const LIMITS: SandboxLimits = { timeoutMs: 1000, fuel: Infinity, outputCapBytes: 1 << 20 };

/** A plugin instance and how to ask it for decisions. */
export class Harness {
  readonly instance: PluginInstance;
  readonly host: TestHost;
  constructor(instance: PluginInstance, host: TestHost) {
    this.instance = instance;
    this.host = host;
  }

  static async start(name: string, config?: unknown, host = new TestHost()): Promise<Harness> {
    const inst = await PluginInstance.create(await compiled(name), {
      // "null", not "": Extism 1.0.3's config_get traps on an empty config value
      configJson: JSON.stringify(config ?? null),
      services: host,
    });
    return new Harness(inst, host);
  }

  /** One call on raw input bytes. */
  async call(phase: Phase, input: Uint8Array): Promise<CallResult> {
    return this.instance.call(phase, input, LIMITS);
  }

  /** The raw output of one call; throws with the failure's reason when the call fails. */
  async output(input: PluginInput): Promise<Uint8Array> {
    const res = await this.call(input.phase, encodeInput(input));
    if (!res.ok) throw new PluginFailure(res.reason, res.message);
    return res.output;
  }

  async decide(input: PluginInput): Promise<Decision> {
    return decodeDecision(await this.output(input), input.phase);
  }

  /** The failure of a call that is expected to fail. */
  async failure(input: PluginInput): Promise<PluginFailure> {
    try {
      await this.output(input);
    } catch (err) {
      if (err instanceof PluginFailure) return err;
      throw err;
    }
    throw new Error("the call succeeded");
  }

  /** The guest's linear memory size: the arena runtime must keep it flat across calls. */
  memoryBytes(): number {
    // PluginInstance keeps its CallState private; the test looks, it does not touch
    const state = (this.instance as unknown as { state: CallState }).state;
    return state.memory?.buffer.byteLength ?? 0;
  }

  close(): Promise<void> {
    return this.instance.close();
  }
}

export class PluginFailure extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(`${reason}: ${message}`);
    this.reason = reason;
  }
}

/** A realistic GET request; override what the case is about. */
export function request(over: Partial<PluginInput> = {}): PluginInput {
  return {
    phase: "request",
    method: "GET",
    scheme: "https",
    authority: "api.example.com",
    path: "/v1/users/42",
    query: "",
    client: "203.0.113.7",
    route: "default/api/rule/0",
    status: 0,
    requestHeaders: [
      ["host", "api.example.com"],
      ["user-agent", "curl/8.5.0"],
      ["accept", "application/json"],
    ],
    responseHeaders: [],
    metadata: [],
    ...over,
  };
}

/** `request()` with extra request headers appended. */
export function withHeaders(headers: Pairs, over: Partial<PluginInput> = {}): PluginInput {
  const base = request(over);
  return { ...base, requestHeaders: [...base.requestHeaders, ...headers] };
}

export function phase(input: PluginInput, p: Phase): PluginInput {
  return { ...input, phase: p };
}

/** A reject's body as text. */
export const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The header value of a reject (first, by lowercase name). */
export function headerOf(headers: Pairs, name: string): string | undefined {
  return headers.find(([k]) => k === name)?.[1];
}
