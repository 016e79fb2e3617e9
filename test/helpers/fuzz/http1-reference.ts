// The oracle of the HTTP/1.1 fuzzer: a deliberately small, strict reading of RFC 9112 (plus the
// choices RAUTA documents where the RFC lets a server choose) that cuts a byte stream into
// messages and says, for each, what a correct gateway may do with it:
//   valid       framing known; forward it (the backend gets exactly this method and body) or
//               answer it locally (3xx/4xx: path normalization, limits)
//   either      the RFC leaves refusing or accepting open; if accepted, framed as computed
//   reject      never forwarded; answered 4xx/5xx (the connection may go on: framing is known)
//   local       answered by the gateway itself (OPTIONS *, Max-Forwards: 0, Expect failures)
//   upgrade     an upgrade request: may be forwarded, nothing after it is HTTP
//   fatal       framing unknown or forbidden: never forwarded, nothing after it is processed
//   incomplete  the bytes end inside it: never forwarded as complete
// A gateway that forwards a message the oracle frames differently, or one it says to refuse,
// is what request smuggling looks like; the checker (http1-check.ts) compares.
import { METHODS } from "node:http";

export type Kind = "valid" | "either" | "reject" | "local" | "upgrade" | "fatal" | "incomplete";

export interface RefMessage {
  kind: Kind;
  /** why it is not "valid" (first reason found), for reports */
  why: string;
  method: string;
  target: string;
  /** "1.1", "1.0", … ("" when the request-line did not parse) */
  version: string;
  body: Buffer;
  /** no further message on this connection is processed after this one */
  closes: boolean;
  /** "Expect: 100-continue" on HTTP/1.1: a 100 may precede the response */
  expectContinue: boolean;
  /** the head alone asks for an answer from the gateway (OPTIONS *, Max-Forwards: 0): it may
   * come before a broken body is read */
  localHead: boolean;
  /** offset of the first byte after this message */
  end: number;
}

export interface RefLimits {
  /** bytes of request-line + field lines above which a 431/414 is allowed */
  headBytes: number;
  /** field lines above which a 431 is allowed */
  fieldCount: number;
}

export const REF_LIMITS: RefLimits = { headBytes: 8192, fieldCount: 100 };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const KNOWN_METHODS = new Set(METHODS);
// RFC 3986 characters of a request target (origin-form path and query)
const TARGET_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;
// same grammar as handler.ts validAuthority (RFC 9110 §7.2)
const AUTHORITY =
  /^(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/;
const ABSOLUTE = /^https?:\/\/([^/?#]*)(.*)$/i;
const CHUNK_LINE =
  /^([0-9A-Fa-f]+)((?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\\r\n]|\\[^\r\n])*"))?)*)$/;

const RANK: Record<Kind, number> = {
  valid: 0,
  either: 1,
  upgrade: 2,
  local: 3,
  reject: 4,
  fatal: 5,
  incomplete: 5,
};

interface Line {
  text: string;
  next: number;
}

/** A CRLF-terminated line at `at`: null when incomplete, "bare" when a lone CR or LF comes first. */
function readLine(buf: Buffer, at: number): Line | null | "bare" {
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 10) return "bare";
    if (c === 13) {
      if (i + 1 >= buf.length) return null;
      if (buf[i + 1] !== 10) return "bare";
      return { text: buf.subarray(at, i).toString("latin1"), next: i + 2 };
    }
  }
  return null;
}

const ows = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, "");
const list = (v: string) =>
  v
    .split(",")
    .map(x => ows(x).toLowerCase())
    .filter(x => x !== "");

function fieldValueProblem(v: string): string | null {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 9) continue;
    if (c < 32 || c === 127) return `control character 0x${c.toString(16)} in a field value`;
  }
  return null;
}

/** Cuts `buf` into messages (see the kinds above). Stops after the first message that closes. */
export function analyze(buf: Buffer, limits: RefLimits = REF_LIMITS): RefMessage[] {
  const out: RefMessage[] = [];
  let at = 0;
  while (at < buf.length) {
    const m = message(buf, at, limits, out.length === 0);
    if (m === null) break;
    out.push(m);
    if (m.closes || m.kind === "fatal" || m.kind === "incomplete" || m.kind === "upgrade") break;
    at = m.end;
  }
  return out;
}

function message(buf: Buffer, start: number, limits: RefLimits, first: boolean): RefMessage | null {
  let at = start;
  let kind = "valid" as Kind;
  let why = "";
  const mark = (k: Kind, reason: string) => {
    if (RANK[k] > RANK[kind]) {
      kind = k;
      why = reason;
    }
  };
  // set once the field lines are read: a 100 Continue may precede even a refusal
  let expectsContinueSoFar = false;
  let localHeadSoFar = false;
  const result = (over: Partial<RefMessage>): RefMessage => ({
    kind,
    why,
    method: "",
    target: "",
    version: "",
    body: Buffer.alloc(0),
    closes: false,
    expectContinue: expectsContinueSoFar,
    localHead: localHeadSoFar,
    end: buf.length,
    ...over,
  });
  // RFC 9112 §2.2: empty lines before a request-line are ignored (llhttp skips CR and LF alike)
  while (at < buf.length && (buf[at] === 13 || buf[at] === 10)) {
    if (!(buf[at] === 13 && buf[at + 1] === 10))
      mark("either", "stray CR/LF before the request-line");
    at += buf[at] === 13 && buf[at + 1] === 10 ? 2 : 1;
  }
  if (at >= buf.length) return null;
  // the h2c listener treats a connection starting like the HTTP/2 preface as HTTP/2
  if (first && buf.subarray(at, at + 3).toString("latin1") === "PRI") {
    kind = "fatal";
    why = "PRI: an HTTP/2 preface or the PRI method";
    return result({});
  }
  const rl = readLine(buf, at);
  // refused, or (a bare LF after the target) read by llhttp as an HTTP/0.9 line: it then waits
  // for fields; either way nothing of it may be forwarded
  if (rl === "bare")
    return result({ kind: "incomplete", why: "bare CR or LF in the request-line" });
  if (rl === null) {
    // llhttp refuses a bad method before the line ends
    const partial = buf.subarray(at).toString("latin1");
    const word = /^[^ ]*/.exec(partial)![0];
    if (partial.includes(" ") && !KNOWN_METHODS.has(word))
      return result({ kind: "fatal", why: `unknown method ${word}` });
    return result({ kind: "incomplete", why: "inside the request-line" });
  }
  // "GET /" with no version: llhttp reads an HTTP/0.9 request-line (then fields), answered 505
  const parts = /^([^ ]+)( +)([^ ]+)(?:( +)([^ ]+))?$/.exec(rl.text);
  if (parts === null)
    return result({
      kind: "fatal",
      why: "request-line is not method SP target SP version",
      end: rl.next,
    });
  const [, method, sp1, target] = parts as unknown as [string, string, string, string];
  const sp2 = parts[4] ?? " ";
  const versionText = parts[5] ?? "HTTP/0.9";
  if (sp1.length > 1 || sp2.length > 1) mark("either", "more than one SP in the request-line");
  if (!TOKEN.test(method) || !KNOWN_METHODS.has(method))
    return result({ kind: "fatal", why: `unknown method ${method}`, method });
  const vm = /^HTTP\/([0-9])\.([0-9])$/.exec(versionText);
  if (vm === null)
    return result({ kind: "fatal", why: `bad HTTP-version ${versionText}`, method, target });
  const major = Number(vm[1]);
  const minor = Number(vm[2]);
  const version = `${major}.${minor}`;
  const http09 = parts[5] === undefined;
  if (major !== 1) mark("reject", `HTTP/${version} on an HTTP/1.1 connection (505)`);
  else if (minor > 1) mark("either", `HTTP/${version}: a higher minor version`);
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 33 || c === 127)
      return result({
        kind: "fatal",
        why: "control character in the request-target",
        method,
        target,
        version,
      });
  }
  if (!TARGET_CHARS.test(target) && !target.includes("#"))
    mark("either", "request-target characters outside RFC 3986");
  // the request target
  let absoluteAuthority: string | null = null;
  let asterisk = false;
  if (target === "*") asterisk = true;
  else if (target.startsWith("/")) {
    if (target.includes("#")) mark("reject", "fragment in the request-target");
  } else {
    const abs = ABSOLUTE.exec(target);
    if (abs === null)
      mark("reject", "request-target is neither origin-form nor http(s) absolute-form");
    else {
      absoluteAuthority = abs[1]!;
      if (!AUTHORITY.test(absoluteAuthority) || /^(:|$)/.test(absoluteAuthority))
        mark("reject", "absolute-form without a valid host");
      if (target.includes("#")) mark("reject", "fragment in the request-target");
    }
  }
  // field lines
  at = rl.next;
  const fields: Array<[string, string]> = [];
  let headEnd = -1;
  for (;;) {
    const l = readLine(buf, at);
    if (l === "bare")
      return result({
        kind: "fatal",
        why: "bare CR or LF in the header section",
        method,
        target,
        version,
      });
    if (l === null)
      return result({
        kind: "incomplete",
        why: "inside the header section",
        method,
        target,
        version,
      });
    at = l.next;
    if (l.text === "") {
      headEnd = at;
      break;
    }
    if (/^[ \t]/.test(l.text))
      return result({
        kind: "fatal",
        why: fields.length === 0 ? "whitespace before the first field line" : "obs-fold",
        method,
        target,
        version,
      });
    const colon = l.text.indexOf(":");
    const name = colon === -1 ? "" : l.text.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name))
      return result({
        kind: "fatal",
        why: `invalid field line ${JSON.stringify(l.text.slice(0, 40))}`,
        method,
        target,
        version,
      });
    const value = ows(l.text.slice(colon + 1));
    const bad = fieldValueProblem(value);
    if (bad !== null) return result({ kind: "fatal", why: bad, method, target, version });
    fields.push([name.toLowerCase(), value]);
  }
  const expectsContinue =
    major === 1 &&
    minor >= 1 &&
    fields.some(([k, v]) => k === "expect" && /(?:^|\W)100-continue(?:$|\W)/i.test(v));
  expectsContinueSoFar = expectsContinue;
  if (method === "CONNECT")
    return result({
      kind: "fatal",
      why: "CONNECT (answered 501, closed)",
      method,
      target,
      version,
      end: headEnd,
    });
  if (headEnd - start > limits.headBytes * 0.8)
    mark("either", "header section near the size limit (414/431)");
  if (fields.length > limits.fieldCount * 0.9) mark("either", "field count near the limit (431)");
  const all = (n: string) => fields.filter(([k]) => k === n).map(([, v]) => v);
  // Host (RFC 9112 §3.2)
  const hosts = all("host");
  if (hosts.length > 1) mark("reject", "more than one Host");
  else if (hosts.length === 0 && minor >= 1 && major === 1) mark("reject", "HTTP/1.1 without Host");
  else if (hosts.length === 1 && absoluteAuthority === null && !AUTHORITY.test(hosts[0]!))
    mark("reject", "invalid Host");
  // framing (RFC 9112 §6)
  const cls = all("content-length");
  const tes = all("transfer-encoding");
  let framing: { kind: "none" } | { kind: "length"; n: bigint } | { kind: "chunked" } = {
    kind: "none",
  };
  if (tes.length > 0) {
    if (cls.length > 0)
      return result({
        kind: "fatal",
        why: "Content-Length with Transfer-Encoding",
        method,
        target,
        version,
        end: headEnd,
      });
    const codings = list(tes.join(","));
    if (major === 1 && minor === 0)
      return result({
        kind: "fatal",
        why: "Transfer-Encoding in HTTP/1.0",
        method,
        target,
        version,
        end: headEnd,
      });
    if (
      codings[codings.length - 1] !== "chunked" ||
      codings.filter(c => c === "chunked").length > 1
    )
      return result({
        kind: "fatal",
        why: "Transfer-Encoding not ending in one chunked",
        method,
        target,
        version,
        end: headEnd,
      });
    if (codings.length > 1)
      return result({
        kind: "fatal",
        why: "a transfer coding besides chunked (501)",
        method,
        target,
        version,
        end: headEnd,
      });
    if (tes.length > 1 || /(^|,)\s*(,|$)/.test(tes.join(",")))
      mark("either", "Transfer-Encoding with empty elements or several lines");
    framing = { kind: "chunked" };
  } else if (cls.length > 0) {
    if (cls.length > 1)
      return result({
        kind: "fatal",
        why: "more than one Content-Length",
        method,
        target,
        version,
        end: headEnd,
      });
    if (!/^[0-9]+$/.test(cls[0]!))
      return result({
        kind: "fatal",
        why: `invalid Content-Length ${JSON.stringify(cls[0])}`,
        method,
        target,
        version,
        end: headEnd,
      });
    const n = BigInt(cls[0]!);
    if (n >= 2n ** 64n - 1n)
      return result({
        kind: "fatal",
        why: "Content-Length overflows",
        method,
        target,
        version,
        end: headEnd,
      });
    framing = { kind: "length", n };
  }
  // connection management (RFC 9112 §9.3, §9.6)
  const conn = list(all("connection").join(","));
  // llhttp reads Proxy-Connection like Connection (an HTTP/1.0 keep-alive may come from either)
  const proxyConn = list(all("proxy-connection").join(","));
  let closes =
    http09 ||
    conn.includes("close") ||
    (minor === 0 &&
      major === 1 &&
      !conn.includes("keep-alive") &&
      !proxyConn.includes("keep-alive"));
  const upgrade = conn.includes("upgrade") && all("upgrade").length > 0;
  const hasBody = framing.kind === "chunked" || (framing.kind === "length" && framing.n > 0n);
  if (upgrade && hasBody) {
    // the bytes after the head: body or new protocol? refused (400, closed)
    return result({
      kind: "fatal",
      why: "upgrade request with a body",
      method,
      target,
      version,
      end: headEnd,
    });
  } else if (upgrade && major === 1 && minor === 0) {
    // RFC 9110 §7.8: ignored, served as a plain request on a connection that then closes
    closes = true;
  } else if (upgrade && kind !== "reject" && kind !== "fatal") {
    mark("upgrade", "upgrade request");
  }
  // answered by the gateway itself
  const expect = all("expect");
  let expectContinue = false;
  if (major === 1 && minor >= 1 && expect.length > 0) {
    if (/(?:^|\W)100-continue(?:$|\W)/i.test(expect.join(", "))) expectContinue = true;
    // answered 417 (and closed: the body is not read), except upgrade requests (handed over
    // before Node looks at Expect)
    else if (!upgrade) {
      mark("local", "an expectation other than 100-continue (417)");
      closes = true;
    }
  }
  if ((method === "OPTIONS" || method === "TRACE") && all("max-forwards")[0] === "0") {
    mark("local", "Max-Forwards: 0");
    localHeadSoFar = kind === "local";
  }
  if (asterisk) {
    if (method === "OPTIONS") mark("local", "OPTIONS *");
    else mark("reject", "asterisk-form outside OPTIONS");
    localHeadSoFar = kind === "local";
  }
  // the body
  const base = { method, target, version, closes, expectContinue, localHead: localHeadSoFar };
  if (framing.kind === "none") return result({ ...base, end: headEnd });
  if (framing.kind === "length") {
    if (BigInt(buf.length - headEnd) < framing.n)
      return result({ ...base, kind: "incomplete", why: "inside the body" });
    const n = Number(framing.n);
    return result({ ...base, body: buf.subarray(headEnd, headEnd + n), end: headEnd + n });
  }
  const chunks: Buffer[] = [];
  let extBytes = 0;
  at = headEnd;
  for (;;) {
    const l = readLine(buf, at);
    if (l === "bare")
      return result({ ...base, kind: "fatal", why: "bare CR or LF in a chunk-size line" });
    if (l === null) {
      const partial = buf.subarray(at).toString("latin1");
      if (partial !== "" && !/^[0-9A-Fa-f]/.test(partial))
        return result({ ...base, kind: "fatal", why: "chunk-size is not hex" });
      return result({ ...base, kind: "incomplete", why: "inside a chunk-size line" });
    }
    let size: bigint;
    const cm = CHUNK_LINE.exec(l.text);
    if (cm !== null) {
      size = BigInt(`0x${cm[1]!}`);
      extBytes += cm[2]!.length;
    } else {
      const loose = /^([0-9A-Fa-f]+)[ \t;]/.exec(l.text);
      if (loose === null)
        return result({
          ...base,
          kind: "fatal",
          why: `malformed chunk-size line ${JSON.stringify(l.text.slice(0, 30))}`,
        });
      mark("either", "chunk extension outside the strict grammar");
      size = BigInt(`0x${loose[1]!}`);
      extBytes += l.text.length;
    }
    if (extBytes > 8 * 1024) mark("either", "long chunk extensions (limit 16 KiB)");
    const digits = (cm?.[1] ?? /^[0-9A-Fa-f]+/.exec(l.text)![0]).replace(/^0+/, "");
    if (digits.length > 16) return result({ ...base, kind: "fatal", why: "chunk-size overflows" });
    at = l.next;
    if (size === 0n) break;
    if (BigInt(buf.length - at) < size + 2n) {
      if (BigInt(buf.length - at) >= size && buf.length - at > Number(size)) {
        // one byte after the data and it is not CR
        if (buf[at + Number(size)] !== 13)
          return result({ ...base, kind: "fatal", why: "chunk data not followed by CRLF" });
      }
      return result({ ...base, kind: "incomplete", why: "inside chunk data" });
    }
    const n = Number(size);
    if (buf[at + n] !== 13 || buf[at + n + 1] !== 10)
      return result({ ...base, kind: "fatal", why: "chunk data not followed by CRLF" });
    chunks.push(buf.subarray(at, at + n));
    at += n + 2;
  }
  // trailer section: field lines, framing fields refused by llhttp (RFC 9110 §6.5.1 forbids using them)
  for (;;) {
    const l = readLine(buf, at);
    if (l === "bare")
      return result({ ...base, kind: "fatal", why: "bare CR or LF in the trailer section" });
    if (l === null)
      return result({ ...base, kind: "incomplete", why: "inside the trailer section" });
    at = l.next;
    if (l.text === "") break;
    const colon = l.text.indexOf(":");
    const name = colon === -1 ? "" : l.text.slice(0, colon);
    if (/^[ \t]/.test(l.text) || colon <= 0 || !TOKEN.test(name))
      return result({ ...base, kind: "fatal", why: "invalid trailer field line" });
    if (fieldValueProblem(ows(l.text.slice(colon + 1))) !== null)
      return result({ ...base, kind: "fatal", why: "control character in a trailer" });
    const lname = name.toLowerCase();
    if (lname === "content-length" || lname === "transfer-encoding")
      mark("either", "framing field in the trailer section");
  }
  return result({ ...base, body: Buffer.concat(chunks), end: at });
}
