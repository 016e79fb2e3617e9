// Built-in `rate-limit`: a token bucket per key (client address, a header's or metadata value, or
// the route), kept by the host (`rate_take`, per worker process). Refused requests get 429 with
// Retry-After and the RateLimit-* fields of draft-ietf-httpapi-ratelimit-headers-07; allowed
// ones carry the same fields on their response. Config: ../schema.json; behaviour: ../README.md.
import { run, config, Request, Decision, rateTake, asciiLower } from "../../../assemblyscript/assembly/index";

const KEY_CLIENT = 0;
const KEY_HEADER = 1;
const KEY_ROUTE = 2;
const KEY_METADATA = 3;

let rate: f64 = 0;
let burst: f64 = 0;
let keyKind = KEY_CLIENT;
let keyHeader = "";
let headers: bool = true;
let limitText = "";

function setup(): string | null {
  const c = config();
  rate = c.getNumber("requestsPerSecond", 0);
  if (!(rate > 0) || !isFinite(rate)) return "rate-limit: requestsPerSecond must be a number > 0";
  burst = c.getNumber("burst", Math.ceil(rate));
  if (!(burst >= 1) || !isFinite(burst)) return "rate-limit: burst must be a number >= 1";
  burst = Math.floor(burst);
  const key = c.getString("key", "client");
  if (key == "client") keyKind = KEY_CLIENT;
  else if (key == "route") keyKind = KEY_ROUTE;
  else if (key.startsWith("header:") && key.length > 7) {
    keyKind = KEY_HEADER;
    keyHeader = asciiLower(key.substring(7));
  } else if (key.startsWith("metadata:") && key.length > 9) {
    keyKind = KEY_METADATA;
    keyHeader = key.substring(9);
  } else return "rate-limit: key must be client, route, header:<name> or metadata:<key>";
  headers = c.getBool("headers", true);
  limitText = int(burst);
  return null;
}

/** Seconds until a drained bucket is full again (RateLimit-Reset of an allowed request). */
function refillSeconds(remaining: f64): string {
  const s = Math.ceil((burst - remaining) / rate);
  return int(s < 0 ? 0 : s);
}

/** Whole numbers as text, without pulling in float formatting. */
function int(v: f64): string {
  return (<i64>v).toString();
}

function onRequest(req: Request): Decision {
  // the prefix keeps the key spaces apart: header value "1.2.3.4" is not client 1.2.3.4
  let key: string;
  if (keyKind == KEY_ROUTE) {
    key = "r:" + req.route;
  } else if (keyKind == KEY_HEADER) {
    const v = req.header(keyHeader);
    key = v === null ? "c:" + req.client : "h:" + v;
  } else if (keyKind == KEY_METADATA) {
    const v = req.meta(keyHeader);
    key = v === null ? "c:" + req.client : "m:" + v;
  } else {
    key = "c:" + req.client;
  }
  const left = rateTake(key, rate, burst);
  if (left < 0) {
    // seconds until the next token; never 0, a client retrying at once would only be refused
    let wait = Math.ceil(-left);
    if (wait < 1) wait = 1;
    const w = int(wait);
    return Decision.reject(
      429,
      [
        ["retry-after", w],
        ["ratelimit-limit", limitText],
        ["ratelimit-remaining", "0"],
        ["ratelimit-reset", w],
        ["content-type", "application/json"],
      ],
      '{"error":"rate limit exceeded"}',
    );
  }
  if (!headers) return Decision.continue_();
  return Decision.modify()
    .setResponseHeader("ratelimit-limit", limitText)
    .setResponseHeader("ratelimit-remaining", int(Math.floor(left)))
    .setResponseHeader("ratelimit-reset", refillSeconds(Math.floor(left)));
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
