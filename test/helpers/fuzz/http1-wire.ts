// HTTP/1.1 as bytes on a socket, the client side: write raw bytes (in one or several writes),
// read what comes back and cut it into responses by the RFC 9112 framing rules. Strict on
// purpose: anything that is not a well-formed response sequence is reported, since a gateway
// that writes two messages into each other (or an error text into a response) breaks every
// client after it.
import net from "node:net";

export interface WireResponse {
  version: string;
  status: number;
  /** field lines as received, in order */
  headers: Array<[string, string]>;
  body: Buffer;
  /** 1xx responses received before this one */
  interim: number[];
  /** this response said "connection: close" */
  close: boolean;
}

export interface WireParse {
  responses: WireResponse[];
  /** what could not be parsed (yet) */
  rest: Buffer;
  /** set when the bytes cannot be the start of a valid response */
  error: string | null;
}

const CRLF = Buffer.from("\r\n");
const STATUS_LINE = /^HTTP\/1\.[01] [1-5]\d\d [\t -~\x80-\xff]*$/;
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t -~\x80-\xff]*?)[\t ]*$/;

export function header(r: WireResponse, name: string): string | undefined {
  const l = name.toLowerCase();
  const found = r.headers.filter(([k]) => k.toLowerCase() === l);
  return found.length === 0 ? undefined : found.map(([, v]) => v).join(", ");
}

type Step<T> =
  | { ok: true; value: T; next: number }
  | { ok: false; incomplete: true }
  | { ok: false; incomplete: false; error: string };

function line(buf: Buffer, at: number): Step<string> {
  const end = buf.indexOf(CRLF, at);
  if (end === -1) {
    if (buf.indexOf(10, at) !== -1)
      return { ok: false, incomplete: false, error: "bare LF in a response" };
    return { ok: false, incomplete: true };
  }
  const s = buf.subarray(at, end).toString("latin1");
  if (s.includes("\n") || s.includes("\r"))
    return { ok: false, incomplete: false, error: "bare CR/LF in a response line" };
  return { ok: true, value: s, next: end + 2 };
}

function fields(buf: Buffer, at: number): Step<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  let i = at;
  for (;;) {
    const l = line(buf, i);
    if (!l.ok) return l;
    i = l.next;
    if (l.value === "") return { ok: true, value: out, next: i };
    const m = FIELD.exec(l.value);
    if (m === null)
      return {
        ok: false,
        incomplete: false,
        error: `malformed response field line ${JSON.stringify(l.value.slice(0, 80))}`,
      };
    out.push([m[1]!, m[2]!]);
  }
}

function chunked(buf: Buffer, at: number): Step<Buffer> {
  const parts: Buffer[] = [];
  let i = at;
  for (;;) {
    const l = line(buf, i);
    if (!l.ok) return l;
    const m = /^([0-9A-Fa-f]{1,15})(;.*)?$/.exec(l.value);
    if (m === null)
      return {
        ok: false,
        incomplete: false,
        error: `malformed chunk size ${JSON.stringify(l.value.slice(0, 40))}`,
      };
    const size = parseInt(m[1]!, 16);
    i = l.next;
    if (size === 0) {
      const t = fields(buf, i);
      if (!t.ok) return t;
      return { ok: true, value: Buffer.concat(parts), next: t.next };
    }
    if (buf.length < i + size + 2) return { ok: false, incomplete: true };
    parts.push(buf.subarray(i, i + size));
    if (buf[i + size] !== 13 || buf[i + size + 1] !== 10)
      return { ok: false, incomplete: false, error: "chunk data not followed by CRLF" };
    i += size + 2;
  }
}

/**
 * Cuts `buf` into responses. `methods[i]` is the method of the request answered by the i-th
 * final response (HEAD responses have no body); `closed`: the server closed the connection, so a
 * response without length ends there.
 */
export function parseResponses(
  buf: Buffer,
  methods: readonly string[],
  closed: boolean,
): WireParse {
  const responses: WireResponse[] = [];
  let interim: number[] = [];
  let i = 0;
  const stop = (error: string | null): WireParse => ({ responses, rest: buf.subarray(i), error });
  while (i < buf.length) {
    const sl = line(buf, i);
    if (!sl.ok)
      return stop(
        sl.incomplete ? (closed ? "connection closed inside a status line" : null) : sl.error,
      );
    if (!STATUS_LINE.test(sl.value))
      return stop(`not a status line: ${JSON.stringify(sl.value.slice(0, 80))}`);
    const version = sl.value.slice(5, 8);
    const status = Number(sl.value.slice(9, 12));
    const f = fields(buf, sl.next);
    if (!f.ok)
      return stop(
        f.incomplete ? (closed ? "connection closed inside a response head" : null) : f.error,
      );
    const headers = f.value;
    const r: WireResponse = {
      version,
      status,
      headers,
      body: Buffer.alloc(0),
      interim: [],
      close: false,
    };
    const conn = header(r, "connection");
    r.close = conn !== undefined && /(^|[\s,])close($|[\s,])/i.test(conn);
    if (status < 200) {
      if (status === 101) {
        // a protocol switch: what follows is not HTTP/1.1 any more
        r.interim = interim;
        responses.push(r);
        i = buf.length;
        return stop(null);
      }
      interim.push(status);
      i = f.next;
      continue;
    }
    const method = methods[responses.length] ?? "GET";
    const te = header(r, "transfer-encoding");
    const cl = r.headers.filter(([k]) => k.toLowerCase() === "content-length").map(([, v]) => v);
    let next: number;
    if (
      method === "HEAD" &&
      r.close &&
      closed &&
      cl.length === 1 &&
      buf.length - f.next === Number(cl[0])
    ) {
      // an error answer to a HEAD whose head did not parse: the server could not know the
      // method and sent its diagnostic body; the connection ends with it
      r.body = buf.subarray(f.next);
      next = buf.length;
    } else if (method === "HEAD" || status === 204 || status === 304) next = f.next;
    else if (te !== undefined) {
      if (cl.length > 0) return stop("response with both Content-Length and Transfer-Encoding");
      if (!/(^|,)\s*chunked\s*$/i.test(te)) {
        if (!closed) return stop(null);
        r.body = buf.subarray(f.next);
        next = buf.length;
      } else {
        const c = chunked(buf, f.next);
        if (!c.ok)
          return stop(
            c.incomplete ? (closed ? "connection closed inside a chunked body" : null) : c.error,
          );
        r.body = c.value;
        next = c.next;
      }
    } else if (cl.length > 0) {
      if (new Set(cl).size !== 1 || !/^\d+$/.test(cl[0]!))
        return stop(`invalid response Content-Length ${JSON.stringify(cl)}`);
      const n = Number(cl[0]);
      if (buf.length < f.next + n)
        return stop(closed ? "connection closed inside a response body" : null);
      r.body = buf.subarray(f.next, f.next + n);
      next = f.next + n;
    } else {
      // close-delimited
      if (!closed) return stop(null);
      r.body = buf.subarray(f.next);
      next = buf.length;
    }
    r.interim = interim;
    interim = [];
    responses.push(r);
    i = next;
  }
  return stop(null);
}

export interface TalkOptions {
  /** stop once this many final responses are complete (after `graceMs` more), else wait for close */
  expect?: number;
  /** methods of the requests, in order (HEAD responses have no body) */
  methods?: readonly string[];
  /** give up after this long (the result says timedOut) */
  timeoutMs?: number;
  /** after the expected responses, how long to wait for unexpected extra bytes */
  graceMs?: number;
  /** end our side after writing (TCP half-close) */
  halfClose?: boolean;
  /** called before each write, with what was received so far (e.g. to wait for a 100 Continue) */
  beforeWrite?: (index: number, received: () => Buffer) => Promise<void> | void;
}

export interface TalkResult extends WireParse {
  raw: Buffer;
  closed: boolean;
  timedOut: boolean;
  ms: number;
}

/** Writes `data` (one write per element) on a new connection to 127.0.0.1 and reads the answer. */
export function talk(
  port: number,
  data: Buffer | string | Array<Buffer | string>,
  o: TalkOptions = {},
): Promise<TalkResult> {
  const writes = (Array.isArray(data) ? data : [data]).map(d =>
    typeof d === "string" ? Buffer.from(d, "latin1") : d,
  );
  const methods = o.methods ?? [];
  const timeoutMs = o.timeoutMs ?? 3000;
  const t0 = performance.now();
  return new Promise(resolve => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    let closed = false;
    let grace: NodeJS.Timeout | null = null;
    const current = () => parseResponses(Buffer.concat(chunks), methods, closed);
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (grace !== null) clearTimeout(grace);
      const raw = Buffer.concat(chunks);
      const p = parseResponses(raw, methods, closed);
      socket.destroy();
      resolve({ ...p, raw, closed, timedOut, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (o.expect === undefined || grace !== null) return;
      const p = current();
      if (p.error !== null || p.responses.length >= o.expect)
        grace = setTimeout(() => finish(false), o.graceMs ?? 30);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      finish(false);
    });
    socket.on("connect", async () => {
      for (let i = 0; i < writes.length; i++) {
        if (o.beforeWrite !== undefined) await o.beforeWrite(i, () => Buffer.concat(chunks));
        if (socket.destroyed) return;
        socket.write(writes[i]!);
        if (i < writes.length - 1) await new Promise(r => setImmediate(r));
      }
      if (o.halfClose) socket.end();
      if (o.expect === 0) grace = setTimeout(() => finish(false), o.graceMs ?? 30);
    });
  });
}
