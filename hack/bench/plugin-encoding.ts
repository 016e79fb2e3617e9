// Plugin input encoding, measured (`npm run bench:plugin-encoding`): the ABI hands a plugin the
// whole request head as one compact buffer (plugins-sdk/ABI.md); the alternative is host
// functions a guest calls for what it wants (lazy header access, as proxy-wasm does). Both are
// run here on the same work, a plugin that reads one header (authorization) and answers
// CONTINUE, as raw WebAssembly instances (no Extism, no fuel) so only the encoding differs:
//   buffer: the host encodes the head (encodeInput), the guest copies it in (input_copy) and
//           walks it to the header;
//   lazy:   the guest calls header(name) and the host looks the name up in the request's raw
//           headers and writes the value into guest memory.
// Per request, for 4, 16 and 40 request headers, with one plugin and with four plugins on the
// request (the proxy encodes a head once and every plugin of the request reuses it).
// Writes docs/benchmarks.md between the plugin-encoding markers (--no-write: print only).
import wabtInit from "wabt";
import { encodeInput } from "../../proxy/plugins/abi.ts";
import type { Pairs, PluginInput } from "../../proxy/plugins/abi.ts";
import { writeBenchmarkSection } from "./lib.ts";

const write = !process.argv.includes("--no-write");
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);

const BUFFER_GUEST = `(module
  (import "rauta:host" "input_copy" (func $copy (param i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "authorization")
  (global $found (mut i32) (i32.const 0))
  (func $skip (param $p i32) (result i32)
    (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
  (func $eq (param $p i32) (result i32) (local $i i32)
    (if (i32.ne (i32.load (local.get $p)) (i32.const 13)) (then (return (i32.const 0))))
    (loop $l
      (if (i32.ne (i32.load8_u (i32.add (i32.add (local.get $p) (i32.const 4)) (local.get $i)))
                  (i32.load8_u (local.get $i)))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 13))))
    (i32.const 1))
  (func (export "on_request") (result i32) (local $p i32) (local $n i32) (local $k i32)
    (drop (call $copy (i32.const 1024)))
    (local.set $p (i32.const 1028))
    (loop $s
      (local.set $p (call $skip (local.get $p)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $k) (i32.const 7))))
    (local.set $p (i32.add (local.get $p) (i32.const 2)))
    (local.set $n (i32.load (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (block $done
      (loop $h
        (br_if $done (i32.eqz (local.get $n)))
        (if (call $eq (local.get $p))
          (then (global.set $found (call $skip (local.get $p))) (br $done)))
        (local.set $p (call $skip (call $skip (local.get $p))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $h)))
    (i32.const 0)))`;

const LAZY_GUEST = `(module
  (import "rauta:bench" "header" (func $header (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "authorization")
  (global $len (mut i32) (i32.const 0))
  (func (export "on_request") (result i32)
    (global.set $len (call $header (i32.const 0) (i32.const 13) (i32.const 1024) (i32.const 8192)))
    (i32.const 0)))`;

interface Request {
  rawHeaders: string[];
  head: PluginInput;
}

function requestWith(n: number): Request {
  const names = [
    "host",
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "referer",
    "cookie",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-ch-ua",
    "sec-ch-ua-platform",
    "x-request-id",
    "x-forwarded-for",
    "cache-control",
  ];
  const pairs: Pairs = [];
  for (let i = 0; i < n - 1; i++) {
    const name = i < names.length ? names[i]! : `x-extra-${i}`;
    pairs.push([name, `value-${i}-${"v".repeat(20 + (i % 30))}`]);
  }
  // the header the plugin wants comes last: the buffer guest walks past every other one
  pairs.push(["authorization", `Bearer ${"t".repeat(180)}`]);
  const rawHeaders = pairs.flatMap(([k, v]) => [k === "host" ? "Host" : k, v]);
  return {
    rawHeaders,
    head: {
      phase: "request",
      method: "GET",
      scheme: "https",
      authority: "api.example.com",
      path: "/orders/42",
      query: "",
      client: "10.0.0.7",
      route: "default/api/rule/0",
      status: 0,
      requestHeaders: pairs,
      responseHeaders: [],
      metadata: [],
    },
  };
}

const enc = new TextEncoder();

async function instances(wabt: Awaited<ReturnType<typeof wabtInit>>) {
  const compile = (src: string) => {
    const m = wabt.parseWat("guest.wat", src);
    try {
      return new WebAssembly.Module(m.toBinary({}).buffer as Uint8Array<ArrayBuffer>);
    } finally {
      m.destroy();
    }
  };
  // the buffer host: input_copy of the current call's bytes (as host-functions.ts does)
  const buffer = { input: new Uint8Array(0), memory: null as WebAssembly.Memory | null };
  const bufferInstance = new WebAssembly.Instance(compile(BUFFER_GUEST), {
    "rauta:host": {
      input_copy: (dst: number) => {
        new Uint8Array(buffer.memory!.buffer, dst, buffer.input.length).set(buffer.input);
        return buffer.input.length;
      },
    },
  });
  buffer.memory = bufferInstance.exports.memory as WebAssembly.Memory;
  // the lazy host: header(name) looked up in the request's raw headers, written into the guest
  const lazy = { raw: [] as string[], memory: null as WebAssembly.Memory | null };
  const lazyInstance = new WebAssembly.Instance(compile(LAZY_GUEST), {
    "rauta:bench": {
      header: (namePtr: number, nameLen: number, dst: number, cap: number) => {
        const mem = new Uint8Array(lazy.memory!.buffer);
        const name = Buffer.from(mem.buffer, namePtr, nameLen).toString("latin1");
        const raw = lazy.raw;
        for (let i = 0; i < raw.length; i += 2) {
          const k = raw[i]!;
          if (k.length === name.length && k.toLowerCase() === name) {
            const { written } = enc.encodeInto(raw[i + 1]!, mem.subarray(dst, dst + cap));
            return written;
          }
        }
        return -1;
      },
    },
  });
  lazy.memory = lazyInstance.exports.memory as WebAssembly.Memory;
  return {
    buffer: (r: Request, plugins: number) => {
      buffer.input = encodeInput(r.head);
      const call = bufferInstance.exports.on_request as () => number;
      for (let p = 0; p < plugins; p++) call();
    },
    lazy: (r: Request, plugins: number) => {
      lazy.raw = r.rawHeaders;
      const call = lazyInstance.exports.on_request as () => number;
      for (let p = 0; p < plugins; p++) call();
    },
  };
}

function perRequest(fn: (r: Request, plugins: number) => void, r: Request, plugins: number) {
  for (let i = 0; i < CALLS / 10; i++) fn(r, plugins);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) fn(r, plugins);
    best = Math.min(best, ((performance.now() - t0) * 1000) / CALLS);
  }
  return best;
}

async function main() {
  const run = await instances(await wabtInit());
  const rows: string[] = [];
  for (const n of [4, 16, 40]) {
    const r = requestWith(n);
    const bytes = encodeInput(r.head).length;
    for (const plugins of [1, 4]) {
      const b = perRequest(run.buffer, r, plugins);
      const l = perRequest(run.lazy, r, plugins);
      rows.push(
        `| ${n} | ${bytes} | ${plugins} | ${b.toFixed(2)} | ${l.toFixed(2)} | ${(b / l).toFixed(2)}× |`,
      );
      console.error(
        `${n} headers, ${plugins} plugin(s): buffer ${b.toFixed(2)} µs, lazy ${l.toFixed(2)} µs`,
      );
    }
  }
  const lines = [
    "<!-- plugin-encoding:start -->",
    "## Plugin input encoding",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:plugin-encoding\` (hack/bench/plugin-encoding.ts, Node ${process.version}): a plugin that reads one request header and answers CONTINUE, as raw WebAssembly (no Extism, no fuel), so only the way the request reaches the guest differs. **buffer** (the ABI): the host encodes the head once per request, every plugin copies it in with \`input_copy\` and walks to the header. **lazy**: the guest calls a \`header(name)\` host function, which looks the name up in the raw headers and writes the value into guest memory. µs per request, best of 3 runs of ${CALLS.toLocaleString("en-US")}; the wanted header is the last one.`,
    "",
    "| request headers | encoded bytes | plugins | buffer µs | lazy µs | buffer ÷ lazy |",
    "|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    "Nearly all of the buffer's cost is encoding the head, and it grows with the headers; a lazy read costs the same whatever the request carries. So the ABI offers both (plugins-sdk/ABI.md, Input): `head_info`, `field_get`, `header_get` and `meta_get` for single values, and the buffer, encoded only when a guest asks for it, for guests that read everything (one copy instead of a host call per field) and for the SDKs and shared test vectors that use it. The AssemblyScript SDK (and with it the built-ins) reads single fields and headers lazily.",
    "<!-- plugin-encoding:end -->",
  ];
  const text = lines.join("\n");
  console.log(text);
  if (write) writeBenchmarkSection("plugin-encoding", text);
}

await main();
