// fast-check arbitraries for HTTP/2 (h2c, prior knowledge) connections: the preface, SETTINGS,
// then a mix of well-formed requests (":path /h2ok/…") and abuse: malformed header blocks
// (":path /bad/…"), HPACK errors and bombs, oversized header lists, CONTINUATION floods,
// RST/SETTINGS/PING/WINDOW_UPDATE abuse, frames on idle/closed streams, DATA beyond the window.
// Optionally byte-mutated (then the /bad/ property is off: a mutation may repair a bad block).
import fc from "fast-check";
import {
  PREFACE,
  T,
  F,
  frame,
  settings,
  u32,
  requestBlock,
  literal,
  literalIndexed,
  indexed,
  tableSizeUpdate,
  hpackInt,
  hpackString,
  S,
} from "./h2-frames.ts";
import { mutate, split } from "./http1-grammar.ts";

export interface H2Case {
  writes: Buffer[];
  /** well-formed request streams in the case (an upper bound for what reaches a backend) */
  validStreams: number;
  /** no mutation: a "/bad/" path must never reach a backend */
  checkBad: boolean;
}

const BAD_BLOCKS = [
  "upper-name",
  "connection",
  "te-gzip",
  "transfer-encoding",
  "missing-path",
  "empty-path",
  "pseudo-after-regular",
  "duplicate-method",
  "unknown-pseudo",
  "space-in-name",
  "cr-in-value",
  "nul-in-value",
  "userinfo-authority",
  "space-authority",
  "absolute-path",
  "fragment",
  "cl-mismatch",
  "cl-excess",
  "bad-index",
  "index-zero",
  "table-update-huge",
  "table-update-late",
  "huffman-garbage",
  "truncated-literal",
  "integer-overflow",
] as const;

type Op =
  | { k: "get" }
  | { k: "post"; body: string }
  | { k: "bad"; v: (typeof BAD_BLOCKS)[number] }
  | { k: "bomb"; copies: number }
  | { k: "big-headers"; n: number }
  | { k: "continuation"; v: "orphan" | "interleaved" | "flood" | "flood-empty" }
  | { k: "rst"; v: "last" | "idle" | "zero" | "short" }
  | { k: "rapid-reset"; n: number }
  | { k: "settings"; v: string }
  | { k: "ping"; v: "ok" | "short" | "on-stream" | "ack" | "flood" }
  | {
      k: "window";
      v: "zero-conn" | "zero-stream" | "overflow-conn" | "overflow-stream" | "idle" | "short";
    }
  | { k: "data"; v: "stream0" | "idle" | "closed" | "beyond-window" | "bad-padding" | "oversized" }
  | { k: "priority"; v: "self" | "short" | "ok" }
  | {
      k: "misc";
      v:
        | "push-promise"
        | "goaway"
        | "unknown-type"
        | "even-stream"
        | "lower-stream"
        | "reserved-bit";
    };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Op>({ k: "get" }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map<Op>(body => ({ k: "post", body })) },
  { weight: 6, arbitrary: fc.constantFrom(...BAD_BLOCKS).map<Op>(v => ({ k: "bad", v })) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 5, max: 400 }).map<Op>(copies => ({ k: "bomb", copies })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 10, max: 40 }).map<Op>(n => ({ k: "big-headers", n })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("orphan", "interleaved", "flood", "flood-empty")
      .map<Op>(v => ({ k: "continuation", v })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom("last", "idle", "zero", "short").map<Op>(v => ({ k: "rst", v })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 10, max: 300 }).map<Op>(n => ({ k: "rapid-reset", n })),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        "ok",
        "flood",
        "enable-push-2",
        "window-too-big",
        "frame-size-small",
        "frame-size-huge",
        "unknown-id",
        "bad-length",
        "ack-with-payload",
        "on-stream",
        "header-table-0",
        "max-concurrent-0",
        "initial-window-0",
      )
      .map<Op>(v => ({ k: "settings", v })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("ok", "short", "on-stream", "ack", "flood")
      .map<Op>(v => ({ k: "ping", v })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("zero-conn", "zero-stream", "overflow-conn", "overflow-stream", "idle", "short")
      .map<Op>(v => ({ k: "window", v })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("stream0", "idle", "closed", "beyond-window", "bad-padding", "oversized")
      .map<Op>(v => ({ k: "data", v })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom("self", "short", "ok").map<Op>(v => ({ k: "priority", v })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        "push-promise",
        "goaway",
        "unknown-type",
        "even-stream",
        "lower-stream",
        "reserved-bit",
      )
      .map<Op>(v => ({ k: "misc", v })),
  },
);

const HEADERS_DONE = F.END_HEADERS | F.END_STREAM;

// nghttp2 drops a regular field whose name or value has characters HTTP/2 forbids (RFC 9113
// §8.2.1 says the request is malformed): such a request may arrive without that field
const DROPPED_FIELD = new Set(["space-in-name", "cr-in-value", "nul-in-value"]);

function badBlock(v: (typeof BAD_BLOCKS)[number], n: number): { block: Buffer; data?: Buffer } {
  const path = `${DROPPED_FIELD.has(v) ? "/h2drop" : "/bad"}/${v}/${n}`;
  switch (v) {
    case "upper-name":
      return { block: requestBlock({ path, extra: [["X-Upper", "1"]] }) };
    case "connection":
      return { block: requestBlock({ path, extra: [["connection", "keep-alive"]] }) };
    case "te-gzip":
      return { block: requestBlock({ path, extra: [["te", "gzip"]] }) };
    case "transfer-encoding":
      return { block: requestBlock({ path, extra: [["transfer-encoding", "chunked"]] }) };
    case "missing-path":
      return {
        block: Buffer.concat([
          indexed(S.methodGet),
          indexed(S.schemeHttp),
          literal(":authority", "x", S.authority),
          literal("x-bad-path", path),
        ]),
      };
    case "empty-path":
      return { block: Buffer.concat([requestBlock({ path: "" }), literal("x-bad-path", path)]) };
    case "pseudo-after-regular":
      return {
        block: Buffer.concat([
          indexed(S.methodGet),
          indexed(S.schemeHttp),
          literal("x-a", "1"),
          literal(":path", path, S.path),
          literal(":authority", "x", S.authority),
        ]),
      };
    case "duplicate-method":
      return {
        block: Buffer.concat([
          indexed(S.methodGet),
          indexed(S.methodPost),
          indexed(S.schemeHttp),
          literal(":path", path, S.path),
          literal(":authority", "x", S.authority),
        ]),
      };
    case "unknown-pseudo":
      return { block: Buffer.concat([requestBlock({ path }).subarray(0), literal(":foo", "1")]) };
    case "space-in-name":
      return { block: requestBlock({ path, extra: [["x y", "1"]] }) };
    case "cr-in-value":
      return { block: requestBlock({ path, extra: [["x-a", "a\r\nx-injected: 1"]] }) };
    case "nul-in-value":
      return { block: requestBlock({ path, extra: [["x-a", "a\0b"]] }) };
    case "userinfo-authority":
      return { block: requestBlock({ path, authority: "u@x" }) };
    case "space-authority":
      return { block: requestBlock({ path, authority: "a b" }) };
    case "absolute-path":
      return { block: requestBlock({ path: `http://x${path}` }) };
    case "fragment":
      return { block: requestBlock({ path: `${path}#frag` }) };
    case "cl-mismatch":
      return {
        block: requestBlock({ method: "POST", path, extra: [["content-length", "10"]] }),
        data: Buffer.from("abc"),
      };
    case "cl-excess":
      return {
        block: requestBlock({ method: "POST", path, extra: [["content-length", "1"]] }),
        data: Buffer.from("abcde"),
      };
    case "bad-index":
      return { block: Buffer.concat([requestBlock({ path }), indexed(70)]) };
    case "index-zero":
      return { block: Buffer.concat([requestBlock({ path }), Buffer.from([0x80])]) };
    case "table-update-huge":
      return { block: Buffer.concat([tableSizeUpdate(1 << 20), requestBlock({ path })]) };
    case "table-update-late":
      return { block: Buffer.concat([requestBlock({ path }), tableSizeUpdate(0)]) };
    case "huffman-garbage":
      return {
        block: Buffer.concat([
          requestBlock({ path }),
          Buffer.from([0x00]),
          hpackString("x-h"),
          hpackString(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x13]), true),
        ]),
      };
    case "truncated-literal":
      return { block: Buffer.concat([requestBlock({ path }), Buffer.from([0x00, 0x05, 0x61])]) };
    case "integer-overflow":
      return {
        block: Buffer.concat([
          requestBlock({ path }),
          Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ]),
      };
  }
}

function build(
  ops: Op[],
  preface: "ok" | "broken",
  initialSettings: Array<[number, number]>,
): { bytes: Buffer; valid: number } {
  const out: Buffer[] = [
    preface === "ok" ? PREFACE : Buffer.from("PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n", "latin1"),
    settings(initialSettings),
  ];
  let next = 1;
  let last = 0;
  let valid = 0;
  let n = 0;
  const open = () => {
    last = next;
    next += 2;
    return last;
  };
  for (const o of ops) {
    n++;
    switch (o.k) {
      case "get": {
        const id = open();
        out.push(frame(T.HEADERS, HEADERS_DONE, id, requestBlock({ path: `/h2ok/get/${n}` })));
        valid++;
        break;
      }
      case "post": {
        const id = open();
        const body = Buffer.from(o.body, "utf8");
        out.push(
          frame(
            T.HEADERS,
            F.END_HEADERS,
            id,
            requestBlock({
              method: "POST",
              path: `/h2ok/post/${n}`,
              extra: [["content-length", String(body.length)]],
            }),
          ),
        );
        out.push(frame(T.DATA, F.END_STREAM, id, body));
        valid++;
        break;
      }
      case "bad": {
        const id = open();
        const b = badBlock(o.v, n);
        if (DROPPED_FIELD.has(o.v)) valid++;
        if (b.data === undefined) out.push(frame(T.HEADERS, HEADERS_DONE, id, b.block));
        else
          out.push(
            frame(T.HEADERS, F.END_HEADERS, id, b.block),
            frame(T.DATA, F.END_STREAM, id, b.data),
          );
        break;
      }
      case "bomb": {
        // one 4 KB field into the dynamic table, then referenced again and again (RFC 7541 §7.3)
        const id = open();
        const parts = [
          requestBlock({ path: `/bad/bomb/${n}` }),
          literalIndexed("x-bomb", "b".repeat(4000)),
        ];
        for (let i = 0; i < o.copies; i++) parts.push(indexed(62));
        out.push(frame(T.HEADERS, HEADERS_DONE, id, Buffer.concat(parts)));
        break;
      }
      case "big-headers": {
        const id = open();
        const extra: Array<[string, string]> = [];
        for (let i = 0; i < o.n; i++) extra.push([`x-big-${i}`, "v".repeat(1000)]);
        const block = requestBlock({ path: `/bad/big/${n}`, extra });
        // split into frames of at most 16 KB: HEADERS then CONTINUATION
        const chunks: Buffer[] = [];
        for (let i = 0; i < block.length; i += 16_000) chunks.push(block.subarray(i, i + 16_000));
        chunks.forEach((c, i) => {
          const lastChunk = i === chunks.length - 1;
          out.push(
            frame(
              i === 0 ? T.HEADERS : T.CONTINUATION,
              (lastChunk ? F.END_HEADERS : 0) | (i === 0 ? F.END_STREAM : 0),
              id,
              c,
            ),
          );
        });
        break;
      }
      case "continuation": {
        if (o.v === "orphan")
          out.push(frame(T.CONTINUATION, F.END_HEADERS, next, literal("x-a", "1")));
        else {
          const id = open();
          out.push(
            frame(T.HEADERS, F.END_STREAM, id, requestBlock({ path: `/bad/continuation/${n}` })),
          );
          if (o.v === "interleaved") out.push(frame(T.PING, 0, 0, Buffer.alloc(8)));
          else
            for (let i = 0; i < 300; i++)
              out.push(
                frame(
                  T.CONTINUATION,
                  0,
                  id,
                  o.v === "flood" ? literal(`x-c${i}`, "c".repeat(50)) : Buffer.alloc(0),
                ),
              );
        }
        break;
      }
      case "rst":
        if (o.v === "last") out.push(frame(T.RST_STREAM, 0, last, u32(8)));
        else if (o.v === "idle") out.push(frame(T.RST_STREAM, 0, next + 100, u32(8)));
        else if (o.v === "zero") out.push(frame(T.RST_STREAM, 0, 0, u32(8)));
        else out.push(frame(T.RST_STREAM, 0, last, Buffer.from([0, 8])));
        break;
      case "rapid-reset":
        for (let i = 0; i < o.n; i++) {
          const id = open();
          out.push(
            frame(T.HEADERS, HEADERS_DONE, id, requestBlock({ path: `/h2ok/reset/${n}` })),
            frame(T.RST_STREAM, 0, id, u32(8)),
          );
          valid++;
        }
        break;
      case "settings":
        switch (o.v) {
          case "flood":
            for (let i = 0; i < 500; i++) out.push(settings([]));
            break;
          case "enable-push-2":
            out.push(settings([[2, 2]]));
            break;
          case "window-too-big":
            out.push(settings([[4, 2 ** 31]]));
            break;
          case "frame-size-small":
            out.push(settings([[5, 100]]));
            break;
          case "frame-size-huge":
            out.push(settings([[5, 2 ** 24]]));
            break;
          case "unknown-id":
            out.push(settings([[0x99, 1]]));
            break;
          case "bad-length":
            out.push(frame(T.SETTINGS, 0, 0, Buffer.alloc(5)));
            break;
          case "ack-with-payload":
            out.push(frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6)));
            break;
          case "on-stream":
            out.push(frame(T.SETTINGS, 0, 1, Buffer.alloc(0)));
            break;
          case "header-table-0":
            out.push(settings([[1, 0]]));
            break;
          case "max-concurrent-0":
            out.push(settings([[3, 0]]));
            break;
          case "initial-window-0":
            out.push(settings([[4, 0]]));
            break;
          default:
            out.push(settings([[3, 100]]));
        }
        break;
      case "ping":
        if (o.v === "ok") out.push(frame(T.PING, 0, 0, Buffer.alloc(8, 1)));
        else if (o.v === "short") out.push(frame(T.PING, 0, 0, Buffer.alloc(7)));
        else if (o.v === "on-stream") out.push(frame(T.PING, 0, 1, Buffer.alloc(8)));
        else if (o.v === "ack") out.push(frame(T.PING, F.ACK, 0, Buffer.alloc(8)));
        else for (let i = 0; i < 1000; i++) out.push(frame(T.PING, 0, 0, Buffer.alloc(8, 2)));
        break;
      case "window":
        if (o.v === "zero-conn") out.push(frame(T.WINDOW_UPDATE, 0, 0, u32(0)));
        else if (o.v === "zero-stream")
          out.push(frame(T.WINDOW_UPDATE, 0, Math.max(last, 1), u32(0)));
        else if (o.v === "overflow-conn")
          out.push(
            frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)),
            frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)),
          );
        else if (o.v === "overflow-stream") {
          const id = open();
          out.push(
            frame(
              T.HEADERS,
              F.END_HEADERS,
              id,
              requestBlock({ method: "POST", path: `/bad/overflow/${n}` }),
            ),
          );
          out.push(
            frame(T.WINDOW_UPDATE, 0, id, u32(0x7fffffff)),
            frame(T.WINDOW_UPDATE, 0, id, u32(0x7fffffff)),
          );
        } else if (o.v === "idle") out.push(frame(T.WINDOW_UPDATE, 0, next + 200, u32(10)));
        else out.push(frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 1])));
        break;
      case "data":
        if (o.v === "stream0") out.push(frame(T.DATA, 0, 0, Buffer.from("x")));
        else if (o.v === "idle")
          out.push(frame(T.DATA, F.END_STREAM, next + 300, Buffer.from("x")));
        else if (o.v === "closed")
          out.push(frame(T.DATA, F.END_STREAM, Math.max(last, 1), Buffer.from("late")));
        else if (o.v === "beyond-window") {
          const id = open();
          out.push(
            frame(
              T.HEADERS,
              F.END_HEADERS,
              id,
              requestBlock({ method: "POST", path: `/bad/window/${n}` }),
            ),
          );
          for (let i = 0; i < 5; i++) out.push(frame(T.DATA, 0, id, Buffer.alloc(16_384, 0x61)));
        } else if (o.v === "bad-padding") {
          const id = open();
          out.push(
            frame(
              T.HEADERS,
              F.END_HEADERS,
              id,
              requestBlock({ method: "POST", path: `/bad/padding/${n}` }),
            ),
          );
          out.push(frame(T.DATA, F.PADDED | F.END_STREAM, id, Buffer.from([200, 0x61, 0x62])));
        } else out.push(frame(T.DATA, 0, Math.max(last, 1), Buffer.alloc(20_000)));
        break;
      case "priority": {
        // on an idle stream: PRIORITY does not open it (RFC 9113 §5.1), so no id is used up
        const id = next + 50;
        if (o.v === "short") out.push(frame(T.PRIORITY, 0, id, Buffer.alloc(4)));
        else
          out.push(
            frame(
              T.PRIORITY,
              0,
              id,
              Buffer.concat([u32(o.v === "self" ? id : 0), Buffer.from([16])]),
            ),
          );
        break;
      }
      case "misc":
        if (o.v === "push-promise")
          out.push(
            frame(
              T.PUSH_PROMISE,
              F.END_HEADERS,
              Math.max(last, 1),
              Buffer.concat([u32(next + 1), requestBlock({ path: "/bad/push" })]),
            ),
          );
        else if (o.v === "goaway")
          out.push(frame(T.GOAWAY, 0, 0, Buffer.concat([u32(last), u32(0)])));
        else if (o.v === "unknown-type") out.push(frame(0x42, 0xff, next, Buffer.from("ignored")));
        else if (o.v === "even-stream")
          out.push(
            frame(T.HEADERS, HEADERS_DONE, next + 1, requestBlock({ path: `/bad/even/${n}` })),
          );
        else if (o.v === "lower-stream") {
          if (last > 0)
            out.push(
              frame(T.HEADERS, HEADERS_DONE, last, requestBlock({ path: `/bad/lower/${n}` })),
            );
        } else
          out.push(
            frame(
              T.HEADERS,
              HEADERS_DONE,
              open() | 0x80000000,
              requestBlock({ path: `/h2ok/reserved/${n}` }),
            ),
          );
        if (o.v === "reserved-bit") valid++;
        break;
    }
  }
  return { bytes: Buffer.concat(out), valid };
}

const initialSettings = fc.constantFrom<Array<[number, number]>>(
  [],
  [],
  [[4, 65_535]],
  [[1, 0]],
  [[3, 1]],
  [[4, 0]],
  [[6, 100]],
);

export const h2Case: fc.Arbitrary<H2Case> = fc
  .record({
    ops: fc.array(op, { minLength: 1, maxLength: 10 }),
    preface: fc.oneof(
      { weight: 30, arbitrary: fc.constant<"ok">("ok") },
      { weight: 1, arbitrary: fc.constant<"broken">("broken") },
    ),
    initial: initialSettings,
    mutations: fc.oneof(
      { weight: 3, arbitrary: fc.constant([] as Array<{ op: string; at: number; byte: number }>) },
      {
        weight: 1,
        arbitrary: fc.array(
          fc.record({
            op: fc.constantFrom("insert", "replace", "delete", "truncate"),
            at: fc.nat(),
            byte: fc.constantFrom(0, 1, 4, 5, 8, 9, 0x7f, 0x80, 0xff),
          }),
          { minLength: 1, maxLength: 3 },
        ),
      },
    ),
    cuts: fc.array(fc.nat(), { maxLength: 3 }),
  })
  .map(c => {
    const built = build(c.ops, c.preface, c.initial);
    // mutations stay after the preface: the connection must still be HTTP/2 to be interesting
    const head = built.bytes.subarray(0, PREFACE.length);
    const rest = mutate(built.bytes.subarray(PREFACE.length), c.mutations);
    const bytes = Buffer.concat([head, rest]);
    return {
      writes: split(bytes, c.cuts),
      validStreams: built.valid,
      checkBad: c.mutations.length === 0 && c.preface === "ok",
    };
  });

// re-exported for tests that hand-build frames
export { hpackInt };
