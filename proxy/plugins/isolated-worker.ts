// The worker-thread side of an isolated plugin (isolated.ts): the same sandbox as in-thread
// (PluginInstance over the same instrumented module, wall-clock time limit by fuel slices), one
// call at a time, answered by message. What the guest logs is sent to the main thread's logger.
import "../runtime/warnings.ts";
import { parentPort, workerData } from "node:worker_threads";
import type { Phase } from "./abi.ts";
import { KeyCache, RateLimitStore } from "./host-functions.ts";
import type { LogLevel } from "./host-functions.ts";
import { PluginInstance } from "./sandbox.ts";
import type { CallResult, CompiledPlugin, SandboxLimits } from "./sandbox.ts";

export interface IsolatedInit {
  rautaIsolatedPlugin: 1;
  compiled: Omit<CompiledPlugin, "exports"> & { exports: string[] };
  configJson: string;
  limits: SandboxLimits;
}

export type ToIsolated = { id: number; phase: Phase; input: Uint8Array };
export type FromIsolated =
  | { type: "ready" }
  | { type: "init-failed"; message: string }
  | { type: "result"; id: number; result: CallResult }
  | { type: "log"; level: LogLevel; message: string };

async function main(port: NonNullable<typeof parentPort>, init: IsolatedInit) {
  const compiled: CompiledPlugin = { ...init.compiled, exports: new Set(init.compiled.exports) };
  const services = {
    log: (level: LogLevel, message: string) =>
      port.postMessage({ type: "log", level, message } satisfies FromIsolated),
    rateLimits: new RateLimitStore(),
    keys: new KeyCache(),
    now: Date.now,
  };
  const create = () => PluginInstance.create(compiled, { configJson: init.configJson, services });
  let inst: PluginInstance;
  try {
    inst = await create();
  } catch (err) {
    port.postMessage({
      type: "init-failed",
      message: (err as Error).message,
    } satisfies FromIsolated);
    return;
  }
  port.postMessage({ type: "ready" } satisfies FromIsolated);
  // calls are serialized by the message queue: one at a time on one instance
  let queue = Promise.resolve();
  port.on("message", (msg: ToIsolated) => {
    queue = queue.then(async () => {
      const result = await inst.call(msg.phase, msg.input, init.limits);
      if (!result.ok) {
        // never reuse a failed guest
        void inst.close();
        inst = await create();
      }
      port.postMessage({ type: "result", id: msg.id, result } satisfies FromIsolated);
    });
  });
}

const init = workerData as IsolatedInit | undefined;
if (parentPort && init?.rautaIsolatedPlugin === 1) void main(parentPort, init);
