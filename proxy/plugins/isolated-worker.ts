// The child-process side of an isolated plugin (isolated.ts): the same sandbox as in-thread
// (PluginInstance over the same instrumented module, wall-clock time limit by fuel slices), one
// call at a time, answered by IPC message. What the guest logs goes to the parent's logger.
import "../runtime/warnings.ts";
import type { Phase } from "./abi.ts";
import { KeyCache, RateLimitStore } from "./host-functions.ts";
import { PluginCache } from "./plugin-cache.ts";
import type { LogLevel } from "./host-functions.ts";
import { PluginInstance } from "./sandbox.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "./sandbox.ts";

export interface IsolatedInit {
  rautaIsolatedPlugin: 1;
  compiled: Omit<CompiledPlugin, "exports" | "module"> & { exports: string[]; bytes: Uint8Array };
  configJson: string;
  limits: SandboxLimits;
}

export type ToIsolated = IsolatedInit | { id: number; phase: Phase; input: Uint8Array };
export type FromIsolated =
  | { type: "ready" }
  | { type: "init-failed"; message: string }
  | { type: "result"; id: number; result: CallResult }
  | { type: "log"; level: LogLevel; message: string };

const send = (msg: FromIsolated) => process.send?.(msg);

async function main(init: IsolatedInit) {
  const compiled: CompiledPlugin = {
    ...init.compiled,
    module: new WebAssembly.Module(new Uint8Array(init.compiled.bytes)),
    exports: new Set(init.compiled.exports),
  };
  const services = {
    log: (level: LogLevel, message: string) => send({ type: "log", level, message }),
    rateLimits: new RateLimitStore(),
    keys: new KeyCache(),
    cache: new PluginCache(),
    now: Date.now,
  };
  const create = () => PluginInstance.create(compiled, { configJson: init.configJson, services });
  let inst: PluginInstance;
  try {
    inst = await create();
  } catch (err) {
    send({ type: "init-failed", message: (err as Error).message });
    return;
  }
  send({ type: "ready" });
  // calls are serialized: one at a time on one instance
  let queue = Promise.resolve();
  process.on("message", (msg: ToIsolated) => {
    if (!("id" in msg)) return;
    queue = queue.then(async () => {
      const result = await inst.call(msg.phase, new Uint8Array(msg.input), init.limits);
      if (!result.ok) {
        // never reuse a failed guest
        void inst.close();
        inst = await create();
      }
      send({ type: "result", id: msg.id, result });
    });
  });
}

if (process.env.RAUTA_ISOLATED_PLUGIN === "1" && process.send) {
  // the parent gone: nothing to serve
  process.on("disconnect", () => process.exit(0));
  process.once("message", (msg: ToIsolated) => {
    if ("rautaIsolatedPlugin" in msg) void main(msg);
  });
}
