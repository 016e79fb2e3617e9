// fast-check arbitraries for HTTP/1.1 request streams: pipelines of 1-4 requests built from a
// grammar (request-line, Host, fields, framing, body) with known trouble spots mixed in
// (smuggling framings, obs-fold, bare CR/LF, bad targets, limits), then optionally mutated byte
// by byte and cut into several writes. The oracle decides what each stream means; the grammar
// only makes the interesting streams likely.
import fc from "fast-check";

export interface H1Case {
  /** bytes written on one connection, one write per element */
  writes: Buffer[];
}

const SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

const method = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom("TRACE", "CONNECT", "BREW", "get", "M-SEARCH", "QUERY", "GET\t"),
  },
);

const segment = fc.constantFrom(
  "a",
  "b",
  "api",
  "..",
  ".",
  "%2e%2e",
  "%2F",
  "x%20y",
  "~u",
  "",
  "%zz",
  "\\",
  "a;b",
  "é",
);
const target = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(
        fc.array(segment, { maxLength: 4 }),
        fc.constantFrom("", "", "?q=1", "?a=b&c", "?x=%2F", "?"),
      )
      .map(([s, q]) => `/${s.join("/")}${q}`),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "*",
      "http://a.example/p",
      "HTTP://a.example",
      "http://a.example:80?q",
      "https://a.example/s",
      "http:///x",
      "http://u@a.example/",
      "http://:80/",
      "ftp://a.example/",
      "a.example:80",
      "/#frag",
      "/a?b#c",
      "//x//y",
      "/%00",
      `/${"z".repeat(9000)}`,
    ),
  },
);

const version = fc.oneof(
  { weight: 14, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 3, arbitrary: fc.constant("HTTP/1.0") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "HTTP/1.2",
      "HTTP/2.0",
      "HTTP/3.0",
      "http/1.1",
      "HTTP/1.1 ",
      "HTTP/11",
      "HTTP/1.1\t",
    ),
  },
);

const host = fc.oneof(
  { weight: 10, arbitrary: fc.constant(["Host: x"]) },
  { weight: 3, arbitrary: fc.constant(["Host: a.example"]) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      [] as string[],
      ["Host: x", "Host: y"],
      ["Host: x", "host: x"],
      ["Host: u@x"],
      ["Host: a b"],
      ["Host: [::1"],
      ["Host: x:8080"],
      ["Host:"],
      ["HOST: X"],
      ["Host: x, y"],
    ),
  },
);

const extra = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      ["X-Fuzz: 1"],
      ["Connection: close"],
      ["Connection: keep-alive"],
      ["Connection: , , close"],
      ["Connection: upgrade", "Upgrade: websocket"],
      ["Upgrade: websocket"],
      ["Connection: x-drop", "X-Drop: d"],
      ["Connection: content-length"],
      ["Expect: 100-continue"],
      ["Expect: nope"],
      ["Max-Forwards: 0"],
      ["Max-Forwards: 3"],
      ["TE: trailers"],
      ["Trailer: X-T"],
      ["Via: 1.0 x"],
      ["X-Obs: caf\xe9"],
      ["X-Tab:\tv\t"],
      ["Cookie: a=b; c=d"],
      ["Content-Type: text/plain"],
      ["Keep-Alive: timeout=5"],
      ["Proxy-Connection: keep-alive"],
      ["X-Long: " + "l".repeat(3000)],
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      ["X-Ctl: a\x01b"],
      ["X-Del: a\x7fb"],
      ["X-Sp : v"],
      ["X-Folded: a", " b"],
      ["X(bad): v"],
      ["NoColon"],
    ),
  },
);

const bodyText = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.string({
      unit: fc.constantFrom("a", "b", "0", " ", "\r", "\n", ":", "z"),
      maxLength: 24,
    }),
  },
  { weight: 1, arbitrary: fc.constant(SMUGGLED) },
  { weight: 1, arbitrary: fc.constant(`0\r\n\r\n${SMUGGLED}`) },
);

const chunkExt = fc.constantFrom(
  "",
  "",
  "",
  ";e",
  ";e=1",
  ';e="q v"',
  " ;e",
  ";e\n",
  "; e=1",
  `;x=${"e".repeat(200)}`,
);

// the body chunk-encoded, split at random points, maybe with extensions, a trailer, and flaws
function chunked(
  body: string,
  cuts: number[],
  ext: string,
  trailer: string[],
  flaw: string,
): string {
  const points = [...new Set(cuts.map(c => c % (body.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let last = 0;
  for (const p of [...points, body.length]) {
    if (p > last) pieces.push(body.slice(last, p));
    last = p;
  }
  let out = "";
  for (const piece of pieces) {
    let size = Buffer.byteLength(piece, "latin1").toString(16);
    if (flaw === "size+1") size = (Buffer.byteLength(piece, "latin1") + 1).toString(16);
    if (flaw === "0x") size = `0x${size}`;
    if (flaw === "space") size = ` ${size}`;
    if (flaw === "huge") size = `fffffffffffffffff${size}`;
    if (flaw === "lead0") size = `000${size}`;
    out += `${size}${ext}\r\n${piece}${flaw === "nocrlf" ? "" : flaw === "lf" ? "\n" : "\r\n"}`;
  }
  if (flaw === "nolast") return out;
  return `${out}0${ext}\r\n${trailer.map(t => `${t}\r\n`).join("")}\r\n`;
}

const teValue = fc.oneof(
  { weight: 6, arbitrary: fc.constant("chunked") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      " chunked",
      "Chunked",
      "chunked ",
      ", chunked",
      "chunked,",
      "chunked, chunked",
      "gzip, chunked",
      "chunked, gzip",
      "xchunked",
      "chunked\t",
      "identity",
      "chunked;q=1",
      "\tchunked",
      "chunk",
    ),
  },
);

const clValue = (n: number) =>
  fc.constantFrom(
    `${n}`,
    `${n}`,
    `${n}`,
    `+${n}`,
    ` ${n} `,
    `0${n}`,
    `${n}, ${n}`,
    `${n},${n + 1}`,
    "-1",
    `${n + 2}`,
    `${Math.max(0, n - 2)}`,
    `${n}x`,
    "",
  );

type Framing = { head: string[]; body: string };

const framing = (body: string): fc.Arbitrary<Framing> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant<Framing>({ head: [], body: "" }) },
    {
      weight: 5,
      arbitrary: fc.constant<Framing>({
        head: [`Content-Length: ${Buffer.byteLength(body, "latin1")}`],
        body,
      }),
    },
    {
      weight: 2,
      arbitrary: clValue(Buffer.byteLength(body, "latin1")).map(v => ({
        head: [`Content-Length: ${v}`],
        body,
      })),
    },
    {
      weight: 5,
      arbitrary: fc
        .record({
          te: teValue,
          cuts: fc.array(fc.nat(), { maxLength: 3 }),
          ext: chunkExt,
          trailer: fc.constantFrom(
            [] as string[],
            [],
            ["X-T: t"],
            ["Host: evil"],
            ["Content-Length: 5"],
            [" folded"],
          ),
          flaw: fc.constantFrom(
            "",
            "",
            "",
            "",
            "",
            "size+1",
            "0x",
            "space",
            "huge",
            "lead0",
            "nocrlf",
            "lf",
            "nolast",
          ),
        })
        .map(f => ({
          head: [`Transfer-Encoding: ${f.te}`],
          body: chunked(body, f.cuts, f.ext, f.trailer, f.flaw),
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          order: fc.boolean(),
          cl: clValue(Buffer.byteLength(body, "latin1")),
          te: teValue,
        })
        .map(f => {
          const cl = `Content-Length: ${f.cl}`;
          const te = `Transfer-Encoding: ${f.te}`;
          return { head: f.order ? [cl, te] : [te, cl], body: chunked(body, [], "", [], "") };
        }),
    },
    {
      weight: 1,
      arbitrary: fc.constant<Framing>({
        head: [
          `Content-Length: ${Buffer.byteLength(body, "latin1")}`,
          `Content-Length: ${Buffer.byteLength(body, "latin1") + 1}`,
        ],
        body,
      }),
    },
  );

const request: fc.Arbitrary<string> = fc
  .record({
    method,
    target,
    version,
    host,
    extras: fc.array(extra, { maxLength: 3 }),
    hostFirst: fc.boolean(),
    body: bodyText,
  })
  .chain(r =>
    framing(r.body).map(f => {
      const fields = [
        ...(r.hostFirst ? [...r.host, ...r.extras.flat()] : [...r.extras.flat(), ...r.host]),
        ...f.head,
      ];
      return `${r.method} ${r.target} ${r.version}\r\n${fields.map(l => `${l}\r\n`).join("")}\r\n${f.body}`;
    }),
  );

const MUTATION_BYTES = [13, 10, 32, 9, 0, 58, 44, 59, 48, 97, 127, 255, 34, 92, 35, 37];

const mutation = fc.record({
  op: fc.constantFrom("insert", "insert", "replace", "delete", "dupline", "truncate"),
  at: fc.nat(),
  byte: fc.constantFrom(...MUTATION_BYTES),
});

type Mutation = { op: string; at: number; byte: number };

export function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = buf;
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.op) {
      case "insert":
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
        break;
      case "replace":
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at + 1)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      case "dupline": {
        const start = b.lastIndexOf(10, at) + 1;
        const end = b.indexOf(10, at);
        if (end === -1) break;
        b = Buffer.concat([
          b.subarray(0, end + 1),
          b.subarray(start, end + 1),
          b.subarray(end + 1),
        ]);
        break;
      }
      case "truncate":
        b = b.subarray(0, Math.max(1, at));
        break;
    }
  }
  return b;
}

export function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map(c => (buf.length === 0 ? 0 : c % buf.length)))]
    .filter(p => p > 0)
    .sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

const tail = fc.oneof(
  { weight: 8, arbitrary: fc.constant("") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "GARBAGE\r\n\r\n",
      "\r\n",
      "G",
      "GET / HTTP/1.1\r\nHost: x\r\n",
      "\x00\x01\x02",
      "HTTP/1.1 200 OK\r\n\r\n",
    ),
  },
);

/** One connection's worth of bytes: a pipeline, maybe mutated, cut into writes. */
export const h1Case: fc.Arbitrary<H1Case> = fc
  .record({
    requests: fc.array(request, { minLength: 1, maxLength: 4 }),
    tail,
    mutations: fc.oneof(
      { weight: 2, arbitrary: fc.constant([] as Mutation[]) },
      { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
    ),
    cuts: fc.array(fc.nat(), { maxLength: 3 }),
  })
  .map(c => {
    const bytes = mutate(Buffer.from(c.requests.join("") + c.tail, "latin1"), c.mutations);
    return { writes: split(bytes, c.cuts) };
  });
