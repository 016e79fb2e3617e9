// Built-in `cors`: answers CORS preflights itself (204 with the allow-lists, or 403 for an
// origin, method or header it does not allow) and adds Access-Control-Allow-Origin and friends
// to the responses of allowed cross-origin requests. Config: ../schema.json; why 403: ../README.md.
import { run, config, Request, Decision, Modify, log, LogLevel, asciiLower, trimOws } from "../../../assemblyscript/assembly/index";

/** An allowed origin: exact, or with one `*` standing for one or more DNS labels. */
class OriginRule {
  constructor(public prefix: string, public suffix: string, public wildcard: bool) {}

  matches(origin: string): bool {
    if (!this.wildcard) return origin == this.prefix;
    const p = this.prefix;
    const s = this.suffix;
    if (origin.length <= p.length + s.length) return false;
    if (!origin.startsWith(p) || !origin.endsWith(s)) return false;
    // what the * covers is host labels only: no scheme, port, path or userinfo can hide in it
    for (let i = p.length; i < origin.length - s.length; i++) {
      const c = origin.charCodeAt(i);
      const ok = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 46;
      if (!ok) return false;
    }
    return true;
  }
}

let rules: OriginRule[] = [];
let anyOrigin: bool = false;
let methods: string[] = [];
let methodsText = "";
let headersAny: bool = false;
let headers: string[] = [];
let headersText = "";
let exposeText = "";
let credentials: bool = false;
let maxAge = "";

function join(list: string[]): string {
  return list.join(",");
}

function setup(): string | null {
  const c = config();
  const origins = c.getArray("allowOrigins");
  if (origins.length == 0) return "cors: allowOrigins needs at least one origin";
  for (let i = 0; i < origins.length; i++) {
    if (!origins[i].isString) return "cors: allowOrigins holds a non-string";
    const o = asciiLower(origins[i].str);
    if (o == "*") {
      anyOrigin = true;
      continue;
    }
    const star = o.indexOf("*");
    if (star < 0) {
      rules.push(new OriginRule(o, "", false));
      continue;
    }
    // "scheme://*.rest": the * must be the first host label, and alone
    if (o.lastIndexOf("*") != star || star < 3 || o.substring(star - 3, star) != "://" || o.charAt(star + 1) != ".")
      return "cors: a wildcard origin looks like https://*.example.com, got " + o;
    rules.push(new OriginRule(o.substring(0, star), o.substring(star + 1), true));
  }
  const ms = c.has("allowMethods") ? c.getStrings("allowMethods") : ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  methods = ms;
  methodsText = join(ms);
  const hs = c.getStrings("allowHeaders");
  for (let i = 0; i < hs.length; i++) {
    if (hs[i] == "*") headersAny = true;
    else headers.push(asciiLower(hs[i]));
  }
  headersText = join(headers);
  exposeText = join(c.getStrings("exposeHeaders"));
  credentials = c.getBool("allowCredentials", false);
  if (c.has("maxAgeSeconds")) maxAge = (<i64>c.getNumber("maxAgeSeconds")).toString();
  if (anyOrigin && credentials)
    log(LogLevel.Warn, "cors: allowOrigins * with allowCredentials: every origin may send credentialed requests");
  return null;
}

function allowed(origin: string): bool {
  if (anyOrigin) return true;
  const o = asciiLower(origin);
  for (let i = 0; i < rules.length; i++) if (rules[i].matches(o)) return true;
  return false;
}

/** The Access-Control-Allow-Origin value: `*` only when credentials are off (Fetch forbids both). */
function allowOriginValue(origin: string): string {
  return anyOrigin && !credentials ? "*" : origin;
}

function safelistedMethod(m: string): bool {
  return m == "GET" || m == "HEAD" || m == "POST";
}

function refuse(why: string): Decision {
  return Decision.reject(
    403,
    [
      ["content-type", "text/plain; charset=utf-8"],
      ["vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"],
    ],
    "CORS preflight refused: " + why + "\n",
  );
}

function preflight(req: Request, origin: string, method: string): Decision {
  if (!allowed(origin)) return refuse("origin not allowed");
  if (!safelistedMethod(method) && !methods.includes(method)) return refuse("method not allowed");
  const requested = req.header("access-control-request-headers");
  if (requested !== null && !headersAny) {
    const names = requested.split(",");
    for (let i = 0; i < names.length; i++) {
      const n = asciiLower(trimOws(names[i]));
      if (n.length > 0 && !headers.includes(n)) return refuse("header " + n + " not allowed");
    }
  }
  const out = new Array<string[]>();
  out.push(["access-control-allow-origin", allowOriginValue(origin)]);
  if (credentials) out.push(["access-control-allow-credentials", "true"]);
  out.push(["access-control-allow-methods", methodsText]);
  if (headersAny) {
    if (requested !== null && requested.length > 0) out.push(["access-control-allow-headers", requested]);
  } else if (headersText.length > 0) {
    out.push(["access-control-allow-headers", headersText]);
  }
  if (maxAge.length > 0) out.push(["access-control-max-age", maxAge]);
  out.push(["vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]);
  return Decision.reject(204, out, "");
}

function onRequest(req: Request): Decision {
  const origin = req.header("origin");
  if (origin !== null && req.method == "OPTIONS") {
    const method = req.header("access-control-request-method");
    if (method !== null) return preflight(req, origin, method);
  }
  const m = new Modify();
  // the answer depends on Origin unless it is a plain `*`: caches must key on it
  if (!anyOrigin || credentials) m.addResponseHeader("vary", "Origin");
  if (origin === null) return m.orContinue();
  if (!allowed(origin)) {
    // this plugin owns CORS on the route: an upstream's own allowance does not slip through
    m.removeResponseHeader("access-control-allow-origin");
    m.removeResponseHeader("access-control-allow-credentials");
    return m;
  }
  m.setResponseHeader("access-control-allow-origin", allowOriginValue(origin));
  if (credentials) m.setResponseHeader("access-control-allow-credentials", "true");
  if (exposeText.length > 0) m.setResponseHeader("access-control-expose-headers", exposeText);
  return m;
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
