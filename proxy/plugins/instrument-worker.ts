// The binaryen half of plugin instrumentation: instrument() rewrites a module for fuel metering
// and the call wrappers. binaryen costs ~85 MB of RSS and ~0.4 s just to load, so only this
// module imports it; a serving process reaches it through instrumentCached() (instrument.ts),
// which runs this file as a worker thread that exits after one job.
import binaryen from "binaryen";
import {
  ABI_EXPORTS,
  FUEL_GLOBAL,
  REFUEL_IMPORT,
  SANDBOX_NAMESPACE,
  FUEL_MODEL,
  INITIAL_FUEL,
  InstrumentError,
  RC_GLOBAL,
  RESERVED_PREFIX,
  callExportName,
  checkOptions,
  isInstrumentJob,
} from "./instrument.ts";
import type { InstrumentOptions, InstrumentResult, WorkerReply } from "./instrument.ts";
import { WasmFormatError, capMemory, memoryLimits, wasmImports } from "./wasm-sections.ts";

type Ref = number;

// binaryen.js has per-expression accessors (binaryen.Loop.getBody, ...) that its index.d.ts
// does not declare; this is the typed subset the walker uses.
interface Accessors {
  // the declared readBinary(data) omits the features argument the implementation takes
  readBinary(data: Uint8Array, features: number): binaryen.Module;
  // binaryen.ElemDropId is declared but undefined at runtime
  _BinaryenElemDropId(): number;
  Function: { setBody(f: binaryen.FunctionRef, body: Ref): void };
  Block: {
    getName(e: Ref): string | null;
    getNumChildren(e: Ref): number;
    getChildAt(e: Ref, i: number): Ref;
    insertChildAt(e: Ref, i: number, child: Ref): void;
  };
  If: {
    getCondition(e: Ref): Ref;
    getIfTrue(e: Ref): Ref;
    getIfFalse(e: Ref): Ref;
    setIfTrue(e: Ref, arm: Ref): void;
    setIfFalse(e: Ref, arm: Ref): void;
  };
  Loop: { getBody(e: Ref): Ref; setBody(e: Ref, body: Ref): void };
  Break: { getCondition(e: Ref): Ref; getValue(e: Ref): Ref };
  Switch: { getCondition(e: Ref): Ref; getValue(e: Ref): Ref };
  Call: {
    getTarget(e: Ref): string;
    getNumOperands(e: Ref): number;
    getOperandAt(e: Ref, i: number): Ref;
  };
  RefFunc: { getFunc(e: Ref): string };
  CallIndirect: {
    getTarget(e: Ref): Ref;
    getNumOperands(e: Ref): number;
    getOperandAt(e: Ref, i: number): Ref;
  };
  LocalSet: { getValue(e: Ref): Ref };
  GlobalSet: { getValue(e: Ref): Ref };
  Load: { getPtr(e: Ref): Ref };
  Store: { getPtr(e: Ref): Ref; getValue(e: Ref): Ref };
  Unary: { getValue(e: Ref): Ref };
  Binary: { getLeft(e: Ref): Ref; getRight(e: Ref): Ref };
  Select: { getIfTrue(e: Ref): Ref; getIfFalse(e: Ref): Ref; getCondition(e: Ref): Ref };
  Drop: { getValue(e: Ref): Ref };
  Return: { getValue(e: Ref): Ref };
  MemoryGrow: { getDelta(e: Ref): Ref };
  SIMDExtract: { getVec(e: Ref): Ref };
  SIMDReplace: { getVec(e: Ref): Ref; getValue(e: Ref): Ref };
  SIMDShuffle: { getLeft(e: Ref): Ref; getRight(e: Ref): Ref };
  SIMDTernary: { getA(e: Ref): Ref; getB(e: Ref): Ref; getC(e: Ref): Ref };
  SIMDShift: { getVec(e: Ref): Ref; getShift(e: Ref): Ref };
  SIMDLoad: { getPtr(e: Ref): Ref };
  SIMDLoadStoreLane: { getPtr(e: Ref): Ref; getVec(e: Ref): Ref };
  MemoryInit: { getDest(e: Ref): Ref; getOffset(e: Ref): Ref; getSize(e: Ref): Ref };
  MemoryCopy: { getDest(e: Ref): Ref; getSource(e: Ref): Ref; getSize(e: Ref): Ref };
  MemoryFill: { getDest(e: Ref): Ref; getValue(e: Ref): Ref; getSize(e: Ref): Ref };
  RefIsNull: { getValue(e: Ref): Ref };
  TableGet: { getIndex(e: Ref): Ref };
  TableSet: { getIndex(e: Ref): Ref; getValue(e: Ref): Ref };
  TableGrow: { getValue(e: Ref): Ref; getDelta(e: Ref): Ref };
  TupleMake: { getNumOperands(e: Ref): number; getOperandAt(e: Ref, i: number): Ref };
  TupleExtract: { getTuple(e: Ref): Ref };
}
const X = binaryen as unknown as Accessors;

const F = binaryen.Features;
// Explicit, not Features.All: with All, binaryen 132 writes encodings (e.g. compact imports) that
// V8 refuses ("unknown import kind 0x7f"). Reference types and overlong call_indirect are what
// Rust >= 1.82 emits by default; binaryen does not refuse instructions of features left out here
// (the walker below does), so this set only decides how the output is encoded.
const FEATURES =
  F.MutableGlobals |
  F.NontrappingFPToInt |
  F.SignExt |
  F.BulkMemory |
  F.BulkMemoryOpt |
  F.Multivalue |
  F.SIMD128 |
  F.ReferenceTypes |
  F.CallIndirectOverlong |
  F.TailCall |
  F.ExtendedConst;

/** Pushes an expression's children (0 = absent operand) onto the walk stack. */
type Children = (e: Ref, out: Ref[]) => void;
const push = (out: Ref[], ...refs: Ref[]) => {
  for (const r of refs) if (r) out.push(r);
};
const none: Children = () => {};
const operands =
  (c: { getNumOperands(e: Ref): number; getOperandAt(e: Ref, i: number): Ref }): Children =>
  (e, out) => {
    for (let i = c.getNumOperands(e) - 1; i >= 0; i--) out.push(c.getOperandAt(e, i));
  };

// Loops, ifs and blocks are walked by meterFunction itself. Only kinds listed here are accepted:
// an unknown kind could hide a loop among its children, and an unmetered loop escapes the time
// limit, so anything else is refused.
const CHILDREN = new Map<number, Children>([
  [binaryen.NopId, none],
  [binaryen.LocalGetId, none],
  [binaryen.GlobalGetId, none],
  [binaryen.ConstId, none],
  [binaryen.MemorySizeId, none],
  [binaryen.UnreachableId, none],
  [binaryen.DataDropId, none],
  [X._BinaryenElemDropId(), none],
  [binaryen.RefNullId, none],
  [binaryen.RefFuncId, none],
  [binaryen.TableSizeId, none],
  [binaryen.BreakId, (e, out) => push(out, X.Break.getCondition(e), X.Break.getValue(e))],
  [binaryen.SwitchId, (e, out) => push(out, X.Switch.getCondition(e), X.Switch.getValue(e))],
  [binaryen.CallId, operands(X.Call)],
  [
    binaryen.CallIndirectId,
    (e, out) => {
      operands(X.CallIndirect)(e, out);
      out.push(X.CallIndirect.getTarget(e));
    },
  ],
  [binaryen.LocalSetId, (e, out) => push(out, X.LocalSet.getValue(e))],
  [binaryen.GlobalSetId, (e, out) => push(out, X.GlobalSet.getValue(e))],
  [binaryen.LoadId, (e, out) => push(out, X.Load.getPtr(e))],
  [binaryen.StoreId, (e, out) => push(out, X.Store.getPtr(e), X.Store.getValue(e))],
  [binaryen.UnaryId, (e, out) => push(out, X.Unary.getValue(e))],
  [binaryen.BinaryId, (e, out) => push(out, X.Binary.getLeft(e), X.Binary.getRight(e))],
  [
    binaryen.SelectId,
    (e, out) => push(out, X.Select.getIfTrue(e), X.Select.getIfFalse(e), X.Select.getCondition(e)),
  ],
  [binaryen.DropId, (e, out) => push(out, X.Drop.getValue(e))],
  [binaryen.ReturnId, (e, out) => push(out, X.Return.getValue(e))],
  [binaryen.MemoryGrowId, (e, out) => push(out, X.MemoryGrow.getDelta(e))],
  [binaryen.SIMDExtractId, (e, out) => push(out, X.SIMDExtract.getVec(e))],
  [
    binaryen.SIMDReplaceId,
    (e, out) => push(out, X.SIMDReplace.getVec(e), X.SIMDReplace.getValue(e)),
  ],
  [
    binaryen.SIMDShuffleId,
    (e, out) => push(out, X.SIMDShuffle.getLeft(e), X.SIMDShuffle.getRight(e)),
  ],
  [
    binaryen.SIMDTernaryId,
    (e, out) => push(out, X.SIMDTernary.getA(e), X.SIMDTernary.getB(e), X.SIMDTernary.getC(e)),
  ],
  [binaryen.SIMDShiftId, (e, out) => push(out, X.SIMDShift.getVec(e), X.SIMDShift.getShift(e))],
  [binaryen.SIMDLoadId, (e, out) => push(out, X.SIMDLoad.getPtr(e))],
  [
    binaryen.SIMDLoadStoreLaneId,
    (e, out) => push(out, X.SIMDLoadStoreLane.getPtr(e), X.SIMDLoadStoreLane.getVec(e)),
  ],
  [
    binaryen.MemoryInitId,
    (e, out) =>
      push(out, X.MemoryInit.getDest(e), X.MemoryInit.getOffset(e), X.MemoryInit.getSize(e)),
  ],
  [
    binaryen.MemoryCopyId,
    (e, out) =>
      push(out, X.MemoryCopy.getDest(e), X.MemoryCopy.getSource(e), X.MemoryCopy.getSize(e)),
  ],
  [
    binaryen.MemoryFillId,
    (e, out) =>
      push(out, X.MemoryFill.getDest(e), X.MemoryFill.getValue(e), X.MemoryFill.getSize(e)),
  ],
  [binaryen.RefIsNullId, (e, out) => push(out, X.RefIsNull.getValue(e))],
  [binaryen.TableGetId, (e, out) => push(out, X.TableGet.getIndex(e))],
  [binaryen.TableSetId, (e, out) => push(out, X.TableSet.getIndex(e), X.TableSet.getValue(e))],
  [binaryen.TableGrowId, (e, out) => push(out, X.TableGrow.getValue(e), X.TableGrow.getDelta(e))],
  [binaryen.TupleMakeId, operands(X.TupleMake)],
  [binaryen.TupleExtractId, (e, out) => push(out, X.TupleExtract.getTuple(e))],
]);

/** Expression kinds that emit no instruction of their own, so they cost nothing. */
const FREE = new Set<number>([binaryen.BlockId, binaryen.NopId]);

function expressionKind(id: number): string {
  // binaryen.ExpressionIds lacks some kinds (TableFill, ...); the raw id getters have them all
  for (const [key, get] of Object.entries(binaryen as unknown as Record<string, unknown>)) {
    const kind = /^_Binaryen(\w+)Id$/.exec(key)?.[1];
    if (kind && typeof get === "function" && (get as () => unknown)() === id) return kind;
  }
  return `expression kind ${id}`;
}

function typeName(t: number): string {
  const names = new Map<number, string>([
    [binaryen.i32, "i32"],
    [binaryen.i64, "i64"],
    [binaryen.f32, "f32"],
    [binaryen.f64, "f64"],
    [binaryen.v128, "v128"],
    [binaryen.funcref, "funcref"],
    [binaryen.externref, "externref"],
  ]);
  return `(${binaryen
    .expandType(t)
    .map(p => names.get(p) ?? "ref")
    .join(", ")})`;
}

function uniqueName(base: string, taken: (name: string) => boolean): string {
  let name = base;
  for (let i = 1; taken(name); i++) name = `${base}_${i}`;
  return name;
}

function invalidMessage(bytes: Uint8Array): string {
  try {
    new WebAssembly.Module(bytes);
    return "it does not validate";
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

interface Checked {
  imports: InstrumentResult["imports"];
  memory: InstrumentResult["memory"];
}

/** The checks that need no binaryen: validity and the memory rules. */
function precheck(bytes: Uint8Array, opts: InstrumentOptions): Checked {
  if (!WebAssembly.validate(bytes))
    throw new InstrumentError(
      "InvalidModule",
      `the plugin is not a valid WebAssembly module: ${invalidMessage(bytes)}`,
    );
  try {
    const memories = memoryLimits(bytes);
    const imports = wasmImports(bytes);
    if (memories.length > 1)
      throw new InstrumentError(
        "MultipleMemories",
        `the plugin has ${memories.length} memories; a RAUTA plugin defines exactly one, whose size the proxy caps`,
      );
    const memory = memories[0];
    if (memory?.imported) {
      const imp = imports.find(i => i.kind === "memory");
      throw new InstrumentError(
        "ImportedMemory",
        `the plugin imports its memory (${imp?.module}.${imp?.name}) instead of defining it; the proxy can only ` +
          `cap a memory the module defines: build it without --import-memory`,
      );
    }
    if (memory && memory.initial > opts.maxMemoryPages)
      throw new InstrumentError(
        "MemoryTooLarge",
        `the plugin's memory starts at ${memory.initial} pages (${mib(memory.initial)}), more than the allowed ` +
          `${opts.maxMemoryPages} pages (${mib(opts.maxMemoryPages)}): raise the plugin's memory limit or lower ` +
          `its initial memory (e.g. the linker's --initial-memory)`,
      );
    const maxPages = memory ? Math.min(memory.maximum ?? Infinity, opts.maxMemoryPages) : 0;
    return { imports, memory: { initialPages: memory?.initial ?? 0, maxPages } };
  } catch (err) {
    if (err instanceof WasmFormatError)
      throw new InstrumentError(
        "InvalidModule",
        `the plugin is not a supported WebAssembly module: ${err.message}`,
      );
    throw err;
  }
}

const mib = (pages: number) => `${(pages / 16).toFixed(pages % 16 ? 2 : 0)} MiB`;

/** The ABI exports that exist, checked for () -> i32, as [export name, internal function name]. */
function abiExports(
  m: binaryen.Module,
  functionExports: Map<string, string>,
): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const name of ABI_EXPORTS) {
    const internal = functionExports.get(name);
    if (internal === undefined) continue;
    const info = binaryen.getFunctionInfo(m.getFunction(internal));
    if (info.params !== binaryen.none || info.results !== binaryen.i32)
      throw new InstrumentError(
        "MissingExport",
        `${name} is exported as ${typeName(info.params)} -> ${typeName(info.results)}; the RAUTA plugin ABI needs () -> (i32)`,
      );
    found.push([name, internal]);
  }
  if (found.length === 0) {
    const list = [...functionExports.keys()].join(", ") || "nothing";
    throw new InstrumentError(
      "MissingExport",
      `the plugin exports neither on_request nor on_response as a function () -> i32 (it exports ${list}); ` +
        `export at least one of them (plugins-sdk/ABI.md)`,
    );
  }
  return found;
}

/**
 * A stretch of code paid for by one charge where it starts (FUEL_MODEL). A region whose cost is
 * at most foldUpTo is not charged itself but added to the enclosing region, which dominates it:
 * that only overcharges, and spares a charge (~8 instructions) for a few instructions of work.
 */
interface Region {
  cost: number;
  foldUpTo: number;
  place(cost: number): void;
}
type Work = Ref | { open: Region } | { close: true };
const CLOSE: Work = { close: true };
/** loop and function bodies always pay: their charges are what bound execution */
const NEVER = -1;
/** an if arm this small is paid for by the code before the if */
const ARM_FOLD_MAX = 16;
/**
 * code after a branch target always pays for itself: Go dispatches every jump through one loop
 * over nested blocks, and folding those stretches charged each jump for all of them (30x)
 */
const SEGMENT_FOLD_MAX = 0;

/**
 * Functions that need no charge of their own: no loop, no call of a function of the module, never
 * reachable through a table or ref.func, and at most LEAF_MAX_COST instructions. Such a function
 * runs at most its size in instructions per call, so its cost is added to the region of each call
 * site instead (an upper bound, as everywhere in FUEL_MODEL), which spares a charge per call:
 * the small helpers compilers leave out of line (string compares, allocators, getters) are what a
 * hot loop calls.
 */
const LEAF_MAX_COST = 256;

function leafCosts(m: binaryen.Module): Map<string, number> {
  const escaping = new Set<string>();
  for (let i = 0; i < m.getNumElementSegments(); i++)
    for (const f of binaryen.getElementSegmentInfo(m.getElementSegmentByIndex(i)).data)
      escaping.add(f);
  const out = new Map<string, number>();
  const refs: string[] = [];
  for (let i = 0, n = m.getNumFunctions(); i < n; i++) {
    const info = binaryen.getFunctionInfo(m.getFunctionByIndex(i));
    if (info.body === 0) continue;
    let cost = 0;
    let leaf = true;
    const stack: Ref[] = [info.body];
    while (stack.length > 0) {
      const e = stack.pop()!;
      const id = binaryen.getExpressionId(e);
      if (!FREE.has(id)) cost++;
      if (id === binaryen.LoopId || id === binaryen.CallIndirectId) leaf = false;
      else if (id === binaryen.CallId) {
        const callee = binaryen.getFunctionInfo(m.getFunction(X.Call.getTarget(e)));
        if (callee.module === "") leaf = false; // a function of the module, not an import
      } else if (id === binaryen.RefFuncId) refs.push(X.RefFunc.getFunc(e));
      if (!leaf || cost > LEAF_MAX_COST) break;
      if (id === binaryen.IfId) {
        push(stack, X.If.getCondition(e), X.If.getIfTrue(e), X.If.getIfFalse(e));
      } else if (id === binaryen.BlockId) {
        for (let k = 0, c = X.Block.getNumChildren(e); k < c; k++)
          stack.push(X.Block.getChildAt(e, k));
      } else {
        const children = CHILDREN.get(id);
        if (!children) {
          leaf = false; // meterFunction refuses it with a message
          break;
        }
        children(e, stack);
      }
    }
    if (leaf && cost <= LEAF_MAX_COST) out.set(info.name, cost);
  }
  for (const f of [...escaping, ...refs]) out.delete(f);
  return out;
}

/**
 * Meters one function: walks its body once with an explicit stack (Go emits nesting deep enough
 * to overflow a recursive walk), sums each region's cost and inserts the charges.
 */
function meterFunction(
  m: binaryen.Module,
  func: binaryen.FunctionRef,
  fuel: string,
  refuel: string,
  leaves: ReadonlyMap<string, number>,
) {
  const info = binaryen.getFunctionInfo(func);
  const below0 = () => m.i64.lt_s(m.global.get(fuel, binaryen.i64), m.i64.const(0n));
  // a slice of fuel used up: ask the host (which checks the wall clock) for the next one; a
  // negative answer means the time limit passed
  const statements = (cost: number) => [
    m.global.set(fuel, m.i64.sub(m.global.get(fuel, binaryen.i64), m.i64.const(BigInt(cost)))),
    m.if(
      below0(),
      m.block(null, [
        m.global.set(fuel, m.call(refuel, [], binaryen.i64)),
        m.if(below0(), m.unreachable()),
      ]),
    ),
  ];
  const wrap = (cost: number, code: Ref) =>
    m.block(null, [...statements(cost), code], binaryen.auto);
  const region = (foldUpTo: number, place: (cost: number) => void): Work => ({
    open: { cost: 0, foldUpTo, place },
  });

  // the code after each named child of a block (a branch target) is a region of its own
  const blockWork = (block: Ref): Work[] => {
    const out: Work[] = [];
    let inserted = 0;
    let open = false;
    let prev = 0;
    for (let i = 0, n = X.Block.getNumChildren(block); i < n; i++) {
      const child = X.Block.getChildAt(block, i);
      if (prev && binaryen.getExpressionId(prev) === binaryen.BlockId && X.Block.getName(prev)) {
        if (open) out.push(CLOSE);
        out.push(
          region(SEGMENT_FOLD_MAX, cost =>
            X.Block.insertChildAt(
              block,
              i + inserted++,
              m.block(null, statements(cost), binaryen.none),
            ),
          ),
        );
        open = true;
      }
      out.push(child);
      prev = child;
    }
    if (open) out.push(CLOSE);
    return out;
  };

  const regions: Region[] = [];
  const work: Work[] = [
    CLOSE,
    info.body,
    region(NEVER, cost => X.Function.setBody(func, wrap(cost, info.body))),
  ];
  const later = (items: Work[]) => {
    for (let i = items.length - 1; i >= 0; i--) work.push(items[i]!);
  };
  while (work.length > 0) {
    const w = work.pop()!;
    if (typeof w !== "number") {
      if ("open" in w) regions.push(w.open);
      else {
        const r = regions.pop()!;
        if (r.cost <= r.foldUpTo) regions[regions.length - 1]!.cost += r.cost;
        else r.place(Math.max(1, r.cost));
      }
      continue;
    }
    const id = binaryen.getExpressionId(w);
    if (!FREE.has(id)) regions[regions.length - 1]!.cost++;
    if (id === binaryen.CallId)
      regions[regions.length - 1]!.cost += leaves.get(X.Call.getTarget(w)) ?? 0;
    if (id === binaryen.LoopId) {
      later([
        region(NEVER, cost => X.Loop.setBody(w, wrap(cost, X.Loop.getBody(w)))),
        X.Loop.getBody(w),
        CLOSE,
      ]);
    } else if (id === binaryen.IfId) {
      const ifFalse = X.If.getIfFalse(w);
      later([
        X.If.getCondition(w),
        region(ARM_FOLD_MAX, cost => X.If.setIfTrue(w, wrap(cost, X.If.getIfTrue(w)))),
        X.If.getIfTrue(w),
        CLOSE,
        ...(ifFalse
          ? [
              region(ARM_FOLD_MAX, cost => X.If.setIfFalse(w, wrap(cost, X.If.getIfFalse(w)))),
              ifFalse,
              CLOSE,
            ]
          : []),
      ]);
    } else if (id === binaryen.BlockId) {
      later(blockWork(w));
    } else {
      const children = CHILDREN.get(id);
      if (!children)
        throw new InstrumentError(
          "InvalidModule",
          `function ${info.name} uses ${expressionKind(id)}, an instruction RAUTA cannot meter; plugins may use ` +
            `WebAssembly 2.0 without exceptions, GC, threads or table.copy/fill/init`,
        );
      children(w, work as Ref[]);
    }
  }
}

/**
 * Rewrites a plugin module for the sandbox: fuel metering (an exported mutable i64 `__rauta_fuel`,
 * see FUEL_MODEL), `__rauta_call_<name>` wrappers that store on_request/on_response's result in
 * the exported i32 `__rauta_rc` (Extism's JS host drops return values), and the memory's maximum
 * capped at opts.maxMemoryPages. Synchronous and pure; throws InstrumentError for modules the
 * proxy refuses.
 */
export function instrument(bytes: Uint8Array, opts: InstrumentOptions): InstrumentResult {
  checkOptions(opts);
  const checked = precheck(bytes, opts);
  let m: binaryen.Module;
  const debugInfo = binaryen.getDebugInfo();
  try {
    m = X.readBinary(bytes, FEATURES);
  } catch (err) {
    throw new InstrumentError(
      "InvalidModule",
      `binaryen could not read the plugin: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  try {
    // keeps the name section, so a trap's stack trace names the plugin's functions
    binaryen.setDebugInfo(true);
    const functionExports = new Map<string, string>();
    for (let i = 0; i < m.getNumExports(); i++) {
      const exp = binaryen.getExportInfo(m.getExportByIndex(i));
      if (exp.name.startsWith(RESERVED_PREFIX))
        throw new InstrumentError(
          "InvalidModule",
          `the plugin exports ${exp.name}; export names starting with ${RESERVED_PREFIX} are reserved for the proxy`,
        );
      if (exp.kind === binaryen.ExternalFunction) functionExports.set(exp.name, exp.value);
    }
    const targets = abiExports(m, functionExports);

    const fuel = uniqueName(FUEL_GLOBAL, n => m.getGlobal(n) !== 0);
    m.addGlobal(fuel, binaryen.i64, true, m.i64.const(INITIAL_FUEL));
    m.addGlobalExport(fuel, FUEL_GLOBAL);
    const rc = uniqueName(RC_GLOBAL, n => m.getGlobal(n) !== 0);
    m.addGlobal(rc, binaryen.i32, true, m.i32.const(0));
    m.addGlobalExport(rc, RC_GLOBAL);

    const refuel = uniqueName(`${RESERVED_PREFIX}refuel`, n => m.getFunction(n) !== 0);
    m.addFunctionImport(refuel, SANDBOX_NAMESPACE, REFUEL_IMPORT, binaryen.none, binaryen.i64);
    const leaves = leafCosts(m);
    const count = m.getNumFunctions();
    for (let i = 0; i < count; i++) {
      const func = m.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(func);
      if (info.body !== 0 && !leaves.has(info.name)) meterFunction(m, func, fuel, refuel, leaves);
    }
    // added after metering: a wrapper adds one call, and the callee charges for itself
    for (const [name, internal] of targets) {
      const wrapper = uniqueName(callExportName(name), n => m.getFunction(n) !== 0);
      m.addFunction(
        wrapper,
        binaryen.none,
        binaryen.none,
        [],
        m.global.set(rc, m.call(internal, [], binaryen.i32)),
      );
      m.addFunctionExport(wrapper, callExportName(name));
    }

    const out = capMemory(m.emitBinary(), opts.maxMemoryPages);
    if (!WebAssembly.validate(out))
      throw new InstrumentError(
        "InvalidModule",
        `the instrumented plugin does not validate (${invalidMessage(out)}); it probably uses a WebAssembly ` +
          `feature RAUTA does not support`,
      );
    return {
      bytes: out,
      exports: [...functionExports.keys()],
      imports: checked.imports,
      memory: checked.memory,
      fuelModel: FUEL_MODEL,
    };
  } finally {
    binaryen.setDebugInfo(debugInfo);
    m.dispose();
  }
}

// Child entry: instrumentCached() forks this file, sends one InstrumentJob and waits for one reply.
if (process.env.RAUTA_INSTRUMENT_CHILD === "1" && process.send) {
  process.once("message", (job: unknown) => {
    if (!isInstrumentJob(job)) return process.exit(2);
    let reply: WorkerReply;
    try {
      reply = { ok: true, result: instrument(new Uint8Array(job.bytes), job.opts) };
    } catch (err) {
      reply =
        err instanceof InstrumentError
          ? { ok: false, reason: err.reason, message: err.message }
          : { ok: false, message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    process.send!(reply, () => process.exit(0));
  });
}
