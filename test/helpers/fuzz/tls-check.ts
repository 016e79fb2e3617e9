// Runs one TLS fuzz case against the HTTPS listener and checks it:
//   clean       the server answers with TLS records (a handshake or an alert) or closes; it
//               never writes anything else (no HTTP text into a TLS connection)
//   answered    a complete hello gets its answer within a bound
//   bounded     a hello that never completes is dropped within the handshake timeout (the
//               listener's header timeout), not Node's default 120 s
//   SNI         a TLS 1.2 hello naming a.example gets the a.example certificate, any other name
//               (or none) the default one
//   containment no exception was contained
import net from "node:net";
import tls from "node:tls";
import type { Target } from "./target.ts";
import type { TlsCase } from "./tls-hello.ts";
import { FUZZ_LIMITS } from "./target.ts";

export interface TlsOutcome {
  problems: string[];
  /** first record type the server sent (22 handshake, 21 alert), or null */
  first: number | null;
  /** CN seen in a TLS 1.2 Certificate message */
  cn: string | null;
  closed: boolean;
  ms: number;
}

const ANSWER_MS = 3000;
// handshake timeout (the header timeout) plus the time Node takes to notice
const DROP_MS = (FUZZ_LIMITS.headersTimeoutMs ?? 400) + 2600;

export async function runTlsCase(t: Target, c: TlsCase): Promise<TlsOutcome> {
  const containedBefore = await t.contained();
  const t0 = performance.now();
  const got = await new Promise<{ raw: Buffer; closed: boolean; timedOut: boolean }>(resolve => {
    const s = net.connect(t.tlsPort, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    let closed = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (grace !== null) clearTimeout(grace);
      s.destroy();
      resolve({ raw: Buffer.concat(chunks), closed, timedOut });
    };
    let grace: NodeJS.Timeout | null = null;
    // complete hellos: stop once the first flight is in; otherwise wait for the server to give up
    const timer = setTimeout(() => finish(true), c.complete ? ANSWER_MS : DROP_MS);
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      if (c.complete && grace === null) grace = setTimeout(() => finish(false), 60);
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
    });
  });
  const problems: string[] = [];
  const first = got.raw.length > 0 ? got.raw[0]! : null;
  if (first !== null && first !== 22 && first !== 21)
    problems.push(
      `server answered with something that is not TLS: ${JSON.stringify(got.raw.subarray(0, 60).toString("latin1"))}`,
    );
  if (got.timedOut && c.complete && first === null)
    problems.push(`no answer to a complete ClientHello within ${ANSWER_MS} ms`);
  if (got.timedOut && !c.complete)
    problems.push(
      `connection still open ${DROP_MS} ms after an incomplete hello (handshake not bounded)`,
    );
  const cn = certificateName(got.raw);
  if (c.complete && c.tls12 && c.sni !== null && cn !== null) {
    // host names are case-insensitive; RFC 6066 §3 names carry no trailing dot (one that does
    // may get either certificate)
    const name = c.sni.toLowerCase();
    if (name === "a.example" && cn !== "a.example")
      problems.push(`SNI ${JSON.stringify(c.sni)} got certificate ${cn}`);
    if (name !== "a.example" && name !== "a.example." && cn === "a.example")
      problems.push(`SNI ${JSON.stringify(c.sni.slice(0, 40))} got the a.example certificate`);
  }
  if ((await t.contained()) > containedBefore)
    problems.push("an exception was contained while handling the case");
  return { problems, first, cn, closed: got.closed, ms: performance.now() - t0 };
}

/** The CN of the first certificate in a TLS 1.2 server flight (plaintext), if any. */
function certificateName(raw: Buffer): string | null {
  for (const name of ["a.example", "default.test"])
    if (raw.includes(Buffer.from(name))) return name;
  return null;
}

/** A valid TLS client (HTTP/1.1 over TLS, SNI canary.test) still gets its 200. */
export function tlsCanary(port: number, timeoutMs = 3000): Promise<number> {
  return new Promise(resolve => {
    const s = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "canary.test",
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    });
    let buf = "";
    const timer = setTimeout(() => {
      s.destroy();
      resolve(0);
    }, timeoutMs);
    s.on("secureConnect", () =>
      s.write("GET /canary HTTP/1.1\r\nHost: canary.test\r\nConnection: close\r\n\r\n"),
    );
    s.on("data", (d: Buffer) => (buf += d.toString("latin1")));
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1] ?? 0));
    });
  });
}

export function explainTls(c: TlsCase, o: TlsOutcome): string {
  const bytes = Buffer.concat(c.writes);
  return [
    `input: ${bytes.length} bytes in ${c.writes.length} writes (${c.complete ? "complete" : "incomplete or mutated"} hello, SNI ${JSON.stringify(c.sni?.slice(0, 60) ?? null)}, ${c.tls12 ? "TLS 1.2" : "TLS 1.3"}): ${bytes.subarray(0, 48).toString("hex")}…`,
    `  server: first record ${o.first ?? "none"}${o.cn !== null ? `, certificate ${o.cn}` : ""}${o.closed ? ", closed" : ""} in ${Math.round(o.ms)} ms`,
    ...o.problems.map(p => `  PROBLEM: ${p}`),
  ].join("\n");
}
