// Load-time sandboxing of a plugin module: fuel metering stops loops and recursion, the
// __rauta_call_* wrappers hand the host the return code, memory.grow stops at the cap, modules
// the proxy cannot sandbox are refused with a reason, the rewrite still runs under Extism, and
// instrumentCached() rewrites a module once (in a worker) and then serves it from disk.
import { expect } from "chai";
import createPlugin from "@extism/extism";
import wabtInit from "wabt";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { instrument } from "../../../proxy/plugins/instrument-worker.ts";
import {
  FUEL_GLOBAL,
  FUEL_MODEL,
  InstrumentError,
  RC_GLOBAL,
  defaultCacheDir,
  instrumentCacheStats,
  instrumentCached,
} from "../../../proxy/plugins/instrument.ts";
import type { InstrumentErrorReason } from "../../../proxy/plugins/instrument.ts";
import {
  WasmFormatError,
  capMemory,
  memoryLimits,
  wasmImports,
} from "../../../proxy/plugins/wasm-sections.ts";

const FIXTURES = new URL("../../fixtures/plugins/", import.meta.url);
const CAP = { maxMemoryPages: 2 };

type Exports = Record<string, unknown>;

let wabt: Awaited<ReturnType<typeof wabtInit>>;
function wat(name: string): Uint8Array {
  const text = readFileSync(new URL(`${name}.wat`, FIXTURES), "utf8");
  const mod = wabt.parseWat(`${name}.wat`, text);
  try {
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

// the host's refuel answers "no more" here, so a module traps as soon as its fuel is below 0
const NO_REFUEL = { "rauta:sandbox": { refuel: () => -1n } };

async function run(bytes: Uint8Array, imports?: WebAssembly.Imports): Promise<Exports> {
  const all = { ...NO_REFUEL, ...imports };
  const { instance } = await WebAssembly.instantiate(
    bytes,
    WebAssembly.Module.imports(new WebAssembly.Module(bytes)).some(
      i => i.module === "rauta:sandbox",
    )
      ? all
      : (imports ?? {}),
  );
  return instance.exports;
}
const fn = (ex: Exports, name: string) => ex[name] as (...args: number[]) => number | undefined;
const global = (ex: Exports, name: string) => ex[name] as WebAssembly.Global;
const setFuel = (ex: Exports, units: number) => (global(ex, FUEL_GLOBAL).value = BigInt(units));
const fuelLeft = (ex: Exports) => Number(global(ex, FUEL_GLOBAL).value as bigint);

function trapOf(call: () => unknown): Error {
  try {
    call();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a trap");
}

function refusal(bytes: Uint8Array, reason: InstrumentErrorReason, opts = CAP): InstrumentError {
  try {
    instrument(bytes, opts);
  } catch (err) {
    expect(err).to.be.instanceOf(InstrumentError);
    expect((err as InstrumentError).reason, (err as Error).message).to.equal(reason);
    return err as InstrumentError;
  }
  throw new Error(`expected InstrumentError ${reason}`);
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const v = f();
  return [v, performance.now() - t0];
}

describe("plugin instrumentation (fuel, return codes, memory cap)", () => {
  before(async () => {
    wabt = await wabtInit();
  });

  describe("fuel", () => {
    it("stops an infinite loop, and ten times the fuel runs about ten times longer", async () => {
      const [{ bytes }, ms] = timed(() => instrument(wat("spin"), CAP));
      console.log(`      instrumenting spin.wat took ${ms.toFixed(1)} ms`);
      const ex = await run(bytes);
      const spin = (units: number) => {
        setFuel(ex, units);
        const [trap, took] = timed(() => trapOf(() => fn(ex, "on_request")()));
        expect(trap).to.be.instanceOf(WebAssembly.RuntimeError);
        expect(trap.message).to.match(/unreachable/);
        expect(
          fuelLeft(ex),
          "fuel < 0 is how the host tells out-of-fuel from a plugin trap",
        ).to.be.below(0);
        return took;
      };
      spin(1e6); // warm-up: tier-up of the loop
      const t7 = spin(1e7);
      const t8 = spin(1e8);
      console.log(
        `      spin: 1e7 fuel stopped after ${t7.toFixed(1)} ms, 1e8 after ${t8.toFixed(1)} ms ` +
          `(${(1e8 / t8 / 1e3).toFixed(0)}k units/ms)`,
      );
      expect(t8).to.be.greaterThan(t7);
    });

    it("stops deep recursion, which has no loop to charge", async () => {
      const ex = await run(instrument(wat("fib"), CAP).bytes);
      setFuel(ex, 1e7);
      const [trap, ms] = timed(() => trapOf(() => fn(ex, "fib")(40)));
      expect(trap.message).to.match(/unreachable/);
      expect(fuelLeft(ex)).to.be.below(0);
      console.log(`      fib(40) with 1e7 fuel stopped after ${ms.toFixed(1)} ms`);
    });

    it("a call that returns leaves fuel >= 0, and the difference is about the instructions it ran", async () => {
      const ex = await run(instrument(wat("fib"), CAP).bytes);
      const calls = (n: number) => 2 * fibonacci(n + 1) - 1;
      setFuel(ex, 1e7);
      expect(fn(ex, "fib")(20)).to.equal(6765);
      const used = 1e7 - fuelLeft(ex);
      expect(fuelLeft(ex)).to.be.at.least(0);
      // every call is charged its whole 14-instruction body at entry (both if arms fold into it),
      // though a leaf call runs only 5 of them
      expect(used).to.be.within(calls(20) * 5, calls(20) * 14);
      setFuel(ex, 1e9);
      const [, ms] = timed(() => fn(ex, "fib")(27));
      const used27 = 1e9 - fuelLeft(ex);
      console.log(
        `      fib(20) used ${used} units for ${calls(20)} calls; fib(27): ${used27} units in ` +
          `${ms.toFixed(1)} ms (${(used27 / ms / 1e3).toFixed(0)}k units/ms)`,
      );
    });

    it("a jump back to a dispatch loop pays for the segment it runs, not for the whole function", async () => {
      const ex = await run(instrument(wat("dispatch"), CAP).bytes);
      setFuel(ex, 1e7);
      expect(fn(ex, "run")(1000)).to.equal(1000);
      const perStep = (1e7 - fuelLeft(ex)) / 1000;
      // the step's 14 instructions plus the dispatch's 2; the unused 80-instruction segment is not paid
      expect(perStep).to.be.within(16, 17);
    });

    it("finds a loop hidden in an if arm, after a branch target, inside a call's operand", async () => {
      const ex = await run(instrument(wat("hidden-loop"), CAP).bytes);
      setFuel(ex, 1e6);
      expect(trapOf(() => fn(ex, "on_request")()).message).to.match(/unreachable/);
      expect(fuelLeft(ex)).to.be.below(0);
    });

    it("charges a leaf helper at its call site, and a function in a table at its own entry", async () => {
      const ex = await run(instrument(wat("leaf-calls"), CAP).bytes);
      const perCall = (name: string) => {
        setFuel(ex, 1e7);
        expect(fn(ex, name)(1000)).to.equal(10_000);
        return (1e7 - fuelLeft(ex)) / 1000;
      };
      // the helper's 21 instructions are paid on every call either way (the loop's own ~12 too)
      const direct = perCall("direct");
      const indirect = perCall("indirect");
      expect(direct).to.be.within(21 + 10, 21 + 16);
      expect(indirect).to.be.within(21 + 10, 21 + 17);
      setFuel(ex, 1e5);
      expect(trapOf(() => fn(ex, "direct")(1e9)).message).to.match(/unreachable/);
    });

    it("lets a start function run at instantiation on the initial budget", async () => {
      const ex = await run(instrument(wat("start"), CAP).bytes);
      expect(fn(ex, "on_request")()).to.equal(1);
      expect(fuelLeft(ex)).to.be.above(1e9);
    });

    it("says how it counts", () => {
      const result = instrument(wat("fib"), CAP);
      expect(result.fuelModel).to.equal(FUEL_MODEL);
      expect(result.fuelModel)
        .to.match(/function entry/)
        .and.match(/loop header/);
    });
  });

  describe("return codes", () => {
    it("__rauta_call_<phase> stores what the phase returned in __rauta_rc", async () => {
      const ex = await run(instrument(wat("return-codes"), CAP).bytes);
      const rc = () => global(ex, RC_GLOBAL).value;
      expect(fn(ex, "__rauta_call_on_request")()).to.equal(undefined);
      expect(rc()).to.equal(7);
      fn(ex, "__rauta_call_on_response")();
      expect(rc()).to.equal(3);
      // the originals stay exported as they were
      expect(fn(ex, "on_request")()).to.equal(7);
    });

    it("adds a wrapper only for the phases the plugin has", async () => {
      const ex = await run(instrument(wat("fib"), CAP).bytes);
      expect(ex).to.have.property("__rauta_call_on_request");
      expect(ex).not.to.have.property("__rauta_call_on_response");
    });
  });

  describe("memory cap", () => {
    it("memory.grow within the cap succeeds, past it returns -1", async () => {
      const result = instrument(wat("grow"), CAP);
      expect(result.memory).to.deep.equal({ initialPages: 1, maxPages: 2 });
      expect(memoryLimits(result.bytes)[0]).to.include({ initial: 1, maximum: 2 });
      const ex = await run(result.bytes);
      expect(fn(ex, "grow")(1)).to.equal(1);
      expect(fn(ex, "grow")(1)).to.equal(-1);
    });

    it("keeps a maximum the module declared when it is below the cap", () => {
      expect(instrument(wat("bounded-memory"), { maxMemoryPages: 8 }).memory).to.deep.equal({
        initialPages: 1,
        maxPages: 3,
      });
      expect(memoryLimits(instrument(wat("bounded-memory"), CAP).bytes)[0]).to.include({
        maximum: 2,
      });
    });

    it("refuses a module whose initial memory is already over the cap", () => {
      const err = refusal(wat("big-memory"), "MemoryTooLarge");
      expect(err.message)
        .to.match(/10 pages/)
        .and.match(/2 pages/);
    });

    it("refuses an imported memory, which it could not cap", () => {
      expect(refusal(wat("imported-memory"), "ImportedMemory").message).to.match(/env\.memory/);
    });

    it("refuses a module with more than one memory", () => {
      refusal(wat("two-memories"), "MultipleMemories");
    });
  });

  describe("refused modules", () => {
    it("bytes that are not WebAssembly: InvalidModule with the engine's reason", () => {
      const err = refusal(new TextEncoder().encode("#!/bin/sh\necho hi\n"), "InvalidModule");
      expect(err.message).to.match(/not a valid WebAssembly module: .*magic/i);
    });

    it("a module without on_request/on_response: MissingExport naming what it does export", () => {
      expect(refusal(wat("no-abi-exports"), "MissingExport").message).to.match(/exports handle/);
    });

    it("on_request with the wrong signature: MissingExport naming the signature", () => {
      expect(refusal(wat("wrong-signature"), "MissingExport").message).to.match(
        /\(i32\) -> \(i32\)/,
      );
    });

    it("a module exporting a __rauta_ name (a fake fuel counter): InvalidModule", () => {
      expect(refusal(wat("reserved-export"), "InvalidModule").message).to.match(/reserved/);
    });

    it("an instruction whose operands it cannot walk (table.fill): InvalidModule, not an unmetered module", () => {
      expect(refusal(wat("unmeterable"), "InvalidModule").message).to.match(/TableFill/);
    });

    it("a nonsensical cap is the caller's bug, not the module's", () => {
      expect(() => instrument(wat("fib"), { maxMemoryPages: -1 })).to.throw(RangeError);
    });
  });

  describe("under @extism/extism", () => {
    it("runs the rewritten module: the wrapper's rc, the original exports and imports, and fuel", async () => {
      const result = instrument(wat("extism"), CAP);
      expect(result.exports).to.deep.equal(["on_request", "spin"]);
      expect(result.imports).to.deep.equal([
        { module: "extism:host/env", name: "input_length", kind: "function" },
      ]);
      const plugin = await createPlugin(
        { wasm: [{ data: result.bytes }] },
        { useWasi: false, functions: { "rauta:sandbox": { refuel: () => -1n } } },
      );
      try {
        await plugin.call("__rauta_call_on_request", "hello");
        const ex = (await plugin.getInstance()).exports;
        expect(global(ex, RC_GLOBAL).value).to.equal(5);
        setFuel(ex, 1e6);
        let failed: unknown = null;
        await plugin.call("spin").catch((err: unknown) => (failed = err));
        expect(failed).to.be.instanceOf(Error);
        expect(fuelLeft(ex)).to.be.below(0);
      } finally {
        await plugin.close();
      }
    });
  });

  describe("the binary patcher", () => {
    it("adds a maximum where there was none and lowers one above the cap", () => {
      const grow = wat("grow");
      expect(memoryLimits(grow)).to.deep.equal([
        { initial: 1, maximum: undefined, shared: false, memory64: false, imported: false },
      ]);
      expect(memoryLimits(capMemory(grow, 5))[0]).to.include({ initial: 1, maximum: 5 });
      expect(memoryLimits(capMemory(wat("bounded-memory"), 2))[0]).to.include({ maximum: 2 });
      expect(memoryLimits(capMemory(wat("bounded-memory"), 9))[0]).to.include({ maximum: 3 });
      expect(WebAssembly.validate(capMemory(grow, 5))).to.equal(true);
    });

    it("reads imports in order, and imported memories as imported", () => {
      expect(wasmImports(wat("imported-memory"))).to.deep.equal([
        { module: "env", name: "memory", kind: "memory" },
      ]);
      expect(memoryLimits(wat("imported-memory"))[0]).to.include({ imported: true, initial: 1 });
    });

    it("checks the framing: truncated sections and overlong LEB128 are errors, not misreads", () => {
      const grow = wat("grow");
      expect(() => memoryLimits(grow.subarray(0, grow.length - 3))).to.throw(
        WasmFormatError,
        /runs past the end/,
      );
      expect(() =>
        memoryLimits(
          new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 0x80, 0x80, 0x80, 0x80, 0x80, 0]),
        ),
      ).to.throw(WasmFormatError, /too long/);
      expect(() => memoryLimits(new Uint8Array([1, 2, 3]))).to.throw(WasmFormatError, /magic/);
    });
  });

  describe("instrumentCached", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "rauta-instrument-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const entries = () => readdirSync(dir);

    it("rewrites in a worker once, then answers from disk without one", async () => {
      const bytes = wat("return-codes");
      const before = instrumentCacheStats();
      const [first, missMs] = await timedAsync(() => instrumentCached(bytes, CAP, dir));
      expect(instrumentCacheStats().workerRuns).to.equal(before.workerRuns + 1);
      expect(Buffer.from(first.bytes).equals(Buffer.from(instrument(bytes, CAP).bytes))).to.equal(
        true,
      );
      expect(entries()).to.have.length(1);
      expect(entries()[0]).to.match(/\.rauta-wasm$/);

      const [second, hitMs] = await timedAsync(() => instrumentCached(bytes, CAP, dir));
      expect(instrumentCacheStats().workerRuns).to.equal(before.workerRuns + 1);
      expect(instrumentCacheStats().hits).to.equal(before.hits + 1);
      expect(second).to.deep.equal(first);
      console.log(`      miss (worker) ${missMs.toFixed(0)} ms, hit ${hitMs.toFixed(1)} ms`);
      expect(hitMs).to.be.below(missMs);
    });

    it("rebuilds a corrupted entry", async () => {
      const bytes = wat("return-codes");
      const file = join(dir, entries().find(f => f.endsWith(".rauta-wasm"))!);
      const good = readFileSync(file);
      const flipped = Buffer.from(good);
      flipped[flipped.length - 1]! ^= 0xff;
      writeFileSync(file, flipped);
      const runs = instrumentCacheStats().workerRuns;
      const rebuilt = await instrumentCached(bytes, CAP, dir);
      expect(instrumentCacheStats().workerRuns).to.equal(runs + 1);
      expect(readFileSync(file).equals(good)).to.equal(true);
      const ex = await run(rebuilt.bytes);
      fn(ex, "__rauta_call_on_request")();
      expect(global(ex, RC_GLOBAL).value).to.equal(7);
      expect(entries().filter(f => f.endsWith(".tmp"))).to.deep.equal([]);
    });

    it("shares one worker between concurrent calls for the same module", async () => {
      const bytes = wat("fib");
      const runs = instrumentCacheStats().workerRuns;
      const [a, b] = await Promise.all([
        instrumentCached(bytes, CAP, dir),
        instrumentCached(bytes, CAP, dir),
      ]);
      expect(a).to.equal(b);
      expect(instrumentCacheStats().workerRuns).to.equal(runs + 1);
    });

    it("passes the worker's refusal on as an InstrumentError", async () => {
      let err: unknown;
      await instrumentCached(wat("no-abi-exports"), CAP, dir).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(InstrumentError);
      expect((err as InstrumentError).reason).to.equal("MissingExport");
    });

    it("lives under $RAUTA_CACHE_DIR/plugins, else ~/.cache/rauta/plugins", () => {
      expect(defaultCacheDir({ RAUTA_CACHE_DIR: "/var/cache/rauta" })).to.equal(
        "/var/cache/rauta/plugins",
      );
      expect(defaultCacheDir({})).to.match(/\.cache\/rauta\/plugins$/);
    });
  });
});

function fibonacci(n: number): number {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

async function timedAsync<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}
