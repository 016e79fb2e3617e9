// Runs one HTTP/2 fuzz case on a raw h2c connection and checks it:
//   liveness    after our frames, a PING is answered or the connection is closed (GOAWAY or
//               not) within a bound; a case that ends mid-frame only has to not crash
//   well-formed the server's bytes are whole frames
//   no smuggle  a "/bad/" request never reaches a backend complete (its head may be streamed
//               and then aborted); no more "/h2ok/" requests than the case opened; no field
//               HTTP/1.1 cannot carry (names, CR/LF/NUL) reaches a backend
//   containment no exception was contained while handling the case
import net from "node:net";
import http2 from "node:http2";
import { T, F, frame, readFrames } from "./h2-frames.ts";
import type { ServerFrame } from "./h2-frames.ts";
import type { Target } from "./target.ts";
import type { H2Case } from "./h2-grammar.ts";

export interface H2Outcome {
  problems: string[];
  frames: ServerFrame[];
  closed: boolean;
  goaway: number | null;
  ms: number;
}

const PROBE = Buffer.from("fuzzping", "latin1");
// generous: a loaded machine (the fuzzer shares it with the proxy) must not look like a hang
const TIMEOUT_MS = 5000;

/** Whether `bytes` (what we wrote after the preface) ends on a frame boundary. */
function aligned(bytes: Buffer): boolean {
  let i = 24;
  while (i + 9 <= bytes.length) i += 9 + bytes.readUIntBE(i, 3);
  return i === bytes.length;
}

/** CR, LF, NUL or another control character but HTAB (RFC 9110 §5.5). */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

export async function runH2Case(t: Target, c: H2Case): Promise<H2Outcome> {
  t.main.requests.length = 0;
  t.a.requests.length = 0;
  const clientErrorsBefore = t.main.clientErrors + t.a.clientErrors;
  const containedBefore = await t.contained();
  const bytes = Buffer.concat(c.writes);
  const probe = aligned(bytes);
  const t0 = performance.now();
  const got = await new Promise<{
    raw: Buffer;
    closed: boolean;
    answered: boolean;
    timedOut: boolean;
  }>(resolve => {
    const s = net.connect(t.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    let closed = false;
    let answered = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ raw: Buffer.concat(chunks), closed, answered, timedOut });
    };
    const timer = setTimeout(() => finish(true), probe ? TIMEOUT_MS : 300);
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      if (!probe || answered) return;
      const { frames } = readFrames(Buffer.concat(chunks));
      if (
        frames.some(f => f.type === T.PING && (f.flags & F.ACK) !== 0 && f.payload.equals(PROBE))
      ) {
        answered = true;
        setTimeout(() => finish(false), 30);
      }
    });
    s.on("error", () => {});
    s.on("close", () => {
      closed = true;
      finish(false);
    });
    s.on("connect", async () => {
      for (let i = 0; i < c.writes.length; i++) {
        if (s.destroyed) return;
        s.write(c.writes[i]!);
        if (i < c.writes.length - 1) await new Promise(r => setImmediate(r));
      }
      if (probe && !s.destroyed) s.write(frame(T.PING, 0, 0, PROBE));
    });
  });
  await t.settle(500);
  const problems: string[] = [];
  const { frames, error } = readFrames(got.raw);
  if (error !== null) problems.push(`server bytes are not frames (${error})`);
  if (probe && got.timedOut)
    problems.push(`neither answered our PING nor closed within ${TIMEOUT_MS} ms`);
  const goawayFrame = frames.find(f => f.type === T.GOAWAY);
  const goaway =
    goawayFrame !== undefined && goawayFrame.payload.length >= 8
      ? goawayFrame.payload.readUInt32BE(4)
      : null;
  const received = [...t.main.requests, ...t.a.requests];
  const bad = received.filter(r => r.url.startsWith("/bad/"));
  if (c.checkBad && bad.length > 0)
    problems.push(
      `malformed request(s) reached a backend: ${bad.map(r => `${r.method} ${r.url}`).join(", ")}`,
    );
  // whatever arrives, no field HTTP/1.1 cannot carry reaches a backend (header injection)
  for (const r of received)
    for (let i = 0; i < r.rawHeaders.length; i += 2)
      if (
        !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(r.rawHeaders[i]!) ||
        hasControl(r.rawHeaders[i + 1]!)
      )
        problems.push(
          `an invalid field reached a backend: ${JSON.stringify([r.rawHeaders[i], r.rawHeaders[i + 1]])}`,
        );
  if (received.some(r => r.rawHeaders.some(h => h.toLowerCase() === "x-injected")))
    problems.push("a field injected through a value reached a backend");
  const ok = received.filter(
    r => r.url.startsWith("/h2ok/") || r.url.startsWith("/h2drop/"),
  ).length;
  if (c.checkBad && ok > c.validStreams)
    problems.push(`${ok} requests reached a backend for ${c.validStreams} valid streams`);
  if (t.main.clientErrors + t.a.clientErrors > clientErrorsBefore)
    problems.push(
      `a backend could not parse what the gateway sent it: ${t.main.lastClientError || t.a.lastClientError}`,
    );
  if ((await t.contained()) > containedBefore)
    problems.push("an exception was contained (500) while handling the case");
  return { problems, frames, closed: got.closed, goaway, ms: performance.now() - t0 };
}

/** A well-formed HTTP/2 request on its own connection (node:http2): the server still serves. */
export function h2Canary(port: number, timeoutMs = 3000): Promise<number> {
  return new Promise(resolve => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      resolve(0);
    }, timeoutMs);
    session.on("error", () => {});
    const req = session.request({ ":path": "/canary", ":authority": "canary.test" });
    req.on("response", h => {
      const status = Number(h[":status"]);
      req.resume();
      req.on("end", () => {
        clearTimeout(timer);
        session.close();
        resolve(status);
      });
    });
    req.on("error", () => {
      clearTimeout(timer);
      session.destroy();
      resolve(0);
    });
    req.end();
  });
}

export function explainH2(c: H2Case, o: H2Outcome): string {
  const bytes = Buffer.concat(c.writes);
  const types = readFrames(bytes.subarray(24)).frames.map(f => `${f.type}/${f.flags}/${f.stream}`);
  return [
    `input: ${bytes.length} bytes in ${c.writes.length} writes, ${c.validStreams} valid streams, frames (type/flags/stream): ${types.slice(0, 40).join(" ")}${types.length > 40 ? " …" : ""}`,
    `  server: ${o.frames.length} frames${o.goaway !== null ? `, GOAWAY ${o.goaway}` : ""}${o.closed ? ", closed" : ""} in ${Math.round(o.ms)} ms`,
    ...o.problems.map(p => `  PROBLEM: ${p}`),
  ].join("\n");
}
