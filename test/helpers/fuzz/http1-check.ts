// Runs one HTTP/1.1 fuzz case against the target and checks it against the oracle
// (http1-reference.ts). Problems are returned as sentences; an empty list is a pass.
//   liveness    every connection gets its answers or is closed within a bound
//   well-formed what the client reads is a clean sequence of responses
//   order       response i answers message i; nothing after a message that ends the connection
//   no smuggle  every request a backend received is a message the oracle frames the same way
//               (method, body) and that got its 2xx; nothing else reaches a backend
//   refusals    what must be refused is never answered 2xx; no 5xx but 501/505
//   containment no exception was contained (rauta_contained_errors_total unchanged)
import { analyze } from "./http1-reference.ts";
import type { RefMessage } from "./http1-reference.ts";
import { talk } from "./http1-wire.ts";
import type { TalkResult } from "./http1-wire.ts";
import type { Target, Recorded } from "./target.ts";
import type { H1Case } from "./http1-grammar.ts";

export interface H1Outcome {
  problems: string[];
  refs: RefMessage[];
  result: TalkResult;
  /** valid messages RAUTA refused with a parser error (stricter than the oracle: not a failure) */
  stricter: string[];
}

// well above the target's request timeout (1.2 s), and generous for a loaded machine
const TIMEOUT_MS = 4000;

export async function runH1Case(t: Target, c: H1Case): Promise<H1Outcome> {
  t.main.requests.length = 0;
  t.a.requests.length = 0;
  const clientErrorsBefore = t.main.clientErrors + t.a.clientErrors;
  const containedBefore = await t.contained();
  const bytes = Buffer.concat(c.writes);
  const refs = analyze(bytes);
  const incomplete = refs.findIndex(m => m.kind === "incomplete");
  const expect = incomplete === -1 ? refs.length : incomplete;
  const result = await talk(t.port, c.writes, {
    expect,
    methods: refs.map(m => m.method),
    timeoutMs: TIMEOUT_MS,
    graceMs: 40,
  });
  await t.settle(600);
  const received: Recorded[] = [...t.main.requests, ...t.a.requests];
  const problems: string[] = [];
  const stricter: string[] = [];
  const say = (s: string) => problems.push(s);
  const pri = refs[0]?.why.startsWith("PRI") === true;

  if (result.timedOut && result.responses.length < expect)
    say(
      `no answer within ${TIMEOUT_MS} ms (got ${result.responses.length} of ${expect} responses, connection open)`,
    );
  if (!pri && result.error !== null) say(`response stream: ${result.error}`);
  if (result.responses.length > Math.max(refs.length, 1))
    say(`${result.responses.length} responses to ${refs.length} messages`);
  const left = [...received];
  result.responses.forEach((r, i) => {
    const m = refs[i];
    const tag = `response ${i} (${r.status}) to message ${i}`;
    if (m === undefined) return;
    const ok2xx = r.status >= 200 && r.status < 300;
    const endsHere =
      m.closes || m.kind === "fatal" || m.kind === "incomplete" || m.kind === "upgrade";
    if (endsHere && i < result.responses.length - 1)
      say(`${tag}: more responses after a message that ends the connection (${m.why || "close"})`);
    if (m.version === "1.0" && r.interim.includes(100))
      say(`${tag}: 100 Continue to an HTTP/1.0 request`);
    if (r.interim.includes(100) && !m.expectContinue) say(`${tag}: 100 Continue without Expect`);
    const fromBackend = r.headers.some(([k]) => k.toLowerCase() === "x-backend");
    if (ok2xx) {
      // a gateway may answer from the head before a broken body is read, as long as nothing went
      // to a backend
      const answeredFromHead = m.localHead && !fromBackend && m.kind !== "reject";
      if (
        (m.kind === "reject" || m.kind === "fatal" || m.kind === "incomplete") &&
        !answeredFromHead
      )
        say(`${tag}: 2xx for a message that must be refused (${m.kind}: ${m.why})`);
      if (answeredFromHead) return;
      if (m.kind === "local") {
        if (fromBackend)
          say(`${tag}: forwarded a message the gateway must answer itself (${m.why})`);
        return;
      }
      const j = left.findIndex(
        b => b.method === m.method && (m.kind === "upgrade" || b.body.equals(m.body)),
      );
      if (j === -1)
        say(
          `${tag}: 2xx but no backend request matches ${m.method} with body ${JSON.stringify(m.body.toString("latin1").slice(0, 60))} (backend got ${describe(received)})`,
        );
      else left.splice(j, 1);
      return;
    }
    if (r.status >= 500 && r.status !== 501 && r.status !== 505)
      say(`${tag}: server error for ${m.kind} message: ${r.body.toString("latin1").slice(0, 120)}`);
    if (r.status === 408 && m.kind !== "incomplete")
      say(`${tag}: 408 for a message the oracle sees complete (${m.kind})`);
    if (m.kind === "valid" && /malformed request/.test(r.body.toString("latin1")))
      stricter.push(
        `${r.body.toString("latin1").trim().slice(0, 100)} for ${m.method} ${m.target.slice(0, 40)}`,
      );
  });
  if (left.length > 0)
    say(`backend received request(s) nobody got a 2xx for (smuggled or lost): ${describe(left)}`);
  if (t.main.clientErrors + t.a.clientErrors > clientErrorsBefore)
    say(
      `a backend could not parse what the gateway sent it: ${t.main.lastClientError || t.a.lastClientError}`,
    );
  if ((await t.contained()) > containedBefore)
    say("an exception was contained (500) while handling the case");
  if (
    refs.length > 0 &&
    refs.every(m => m.kind === "valid" && !m.closes) &&
    result.responses.length < refs.length &&
    !result.timedOut
  )
    stricter.push(`only ${result.responses.length} of ${refs.length} valid messages answered`);
  return { problems, refs, result, stricter };
}

function describe(rs: Recorded[]): string {
  return rs.length === 0
    ? "nothing"
    : rs
        .map(
          r =>
            `${r.method} ${r.url.slice(0, 40)} body ${JSON.stringify(r.body.toString("latin1").slice(0, 40))}`,
        )
        .join("; ");
}

/** A readable account of a case, for failure messages and regression files. */
export function explainH1(c: H1Case, o: H1Outcome): string {
  const lines = [
    `input (${c.writes.length} writes): ${JSON.stringify(Buffer.concat(c.writes).toString("latin1").slice(0, 600))}`,
    ...o.refs.map(
      (m, i) =>
        `  message ${i}: ${m.kind}${m.why ? ` (${m.why})` : ""} ${m.method} ${m.target.slice(0, 50)} HTTP/${m.version} body ${m.body.length}B${m.closes ? " closes" : ""}`,
    ),
    `  answers: ${o.result.responses.map(r => r.status).join(", ") || "none"}${o.result.closed ? ", closed" : ""}${o.result.timedOut ? ", timed out" : ""} in ${Math.round(o.result.ms)} ms`,
    ...o.problems.map(p => `  PROBLEM: ${p}`),
    ...(o.problems.length > 0
      ? [`  received: ${JSON.stringify(o.result.raw.toString("latin1").slice(0, 1200))}`]
      : []),
  ];
  return lines.join("\n");
}
