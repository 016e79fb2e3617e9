// The SDK's conformance module for plugins-sdk/testdata/vectors.json, driven by
// test/unit/plugins/sdk-assemblyscript.spec.ts:
//  - config {"decision": <a decision vector's "decision">}: every call answers that decision,
//    built with the SDK's builders (Decision.reject, Modify.*): its bytes must equal the vector's;
//  - config {"trapInSetup": true}: setup throws (the abort path during setup);
//  - otherwise, the request header x-sdk-test picks a probe of an SDK helper, run on the body:
//      absent   REJECT 200, body = JSON of everything Request decoded (compared with the vector)
//      json     parseJson(body) → 200 with the value re-serialized, or 422 with the error
//      b64url / b64   base64url / base64 decode of the body text → 200 hex, or 422
//      b64url-encode  base64url of the body bytes → 200
//      pct-encode / pct-decode / query-param (name in x-name) / query-without (names in x-name)
import {
  run, config, Request, Decision, Modify, Json, Pair, Phase,
  parseJson, jsonError, base64UrlDecode, base64Decode, base64UrlEncode,
  percentEncode, percentDecode, queryParam, queryWithout, asciiUpper,
} from "../../assembly/index";

let fixed: Json | null = null;

function setup(): string | null {
  const c = config();
  if (c.getBool("trapInSetup")) throw new Error("setup exploded");
  fixed = c.getObject("decision");
  return null;
}

function pairsJson(list: Pair[]): Json {
  const a = Json.array();
  for (let i = 0; i < list.length; i++) {
    a.push(Json.array().push(Json.ofString(list[i].name)).push(Json.ofString(list[i].value)));
  }
  return a;
}

function decoded(req: Request): Json {
  const o = Json.object();
  o.set("phase", Json.ofString(req.phase == Phase.Request ? "request" : "response"));
  o.set("method", Json.ofString(req.method));
  o.set("scheme", Json.ofString(req.scheme));
  o.set("authority", Json.ofString(req.authority));
  o.set("path", Json.ofString(req.path));
  o.set("query", Json.ofString(req.query));
  o.set("client", Json.ofString(req.client));
  o.set("route", Json.ofString(req.route));
  o.set("status", Json.ofNumber(<f64>req.status));
  o.set("requestHeaders", pairsJson(req.headers()));
  o.set("responseHeaders", pairsJson(req.responseHeaders()));
  o.set("metadata", pairsJson(req.metadata()));
  if (req.hasBody) o.set("body", Json.ofString(req.bodyText()));
  if (req.bodyTruncated) o.set("bodyTruncated", Json.ofBool(true));
  // what the lookups answer, so the spec checks them against the lists
  const lookups = Json.object();
  const names = req.headers();
  for (let i = 0; i < names.length; i++) {
    const n = asciiUpper(names[i].name);
    const first = req.header(n);
    const all = req.headerValues(n);
    const vals = Json.array();
    for (let k = 0; k < all.length; k++) vals.push(Json.ofString(all[k]));
    lookups.set(names[i].name, Json.array().push(first === null ? Json.null_() : Json.ofString(first)).push(vals));
  }
  o.set("lookups", lookups);
  const meta = req.metadata();
  const metaLookups = Json.object();
  for (let i = 0; i < meta.length; i++) {
    const v = req.meta(meta[i].name);
    metaLookups.set(meta[i].name, v === null ? Json.null_() : Json.ofString(v));
  }
  o.set("metaLookups", metaLookups);
  const missing = req.header("x-not-there");
  o.set("missingHeader", missing === null ? Json.null_() : Json.ofString(missing));
  return o;
}

function hex(b: Uint8Array): string {
  const digits = "0123456789abcdef";
  let s = "";
  for (let i = 0; i < b.length; i++) s += digits.charAt(b[i] >> 4) + digits.charAt(b[i] & 15);
  return s;
}

function ok(body: string): Decision {
  return Decision.reject(200, [["content-type", "text/plain"]], body);
}

function probe(kind: string, req: Request): Decision {
  const text = req.bodyText();
  if (kind == "json") {
    const v = parseJson(req.body());
    if (v === null) return Decision.reject(422, null, jsonError());
    return ok(v.toString());
  }
  if (kind == "b64url" || kind == "b64") {
    const b = kind == "b64url" ? base64UrlDecode(text) : base64Decode(text);
    if (b === null) return Decision.reject(422, null, "invalid");
    return ok(hex(b));
  }
  if (kind == "b64url-encode") return ok(base64UrlEncode(req.body()));
  if (kind == "pct-encode") return ok(percentEncode(text));
  if (kind == "pct-decode") return ok(percentDecode(text, true));
  const name = req.header("x-name");
  if (kind == "query-param") {
    const v = queryParam(req.query, name === null ? "" : name);
    return v === null ? Decision.reject(404, null, "") : ok(v);
  }
  if (kind == "query-without") return ok(queryWithout(req.query, (name === null ? "" : name).split(",")));
  return Decision.fail("unknown probe " + kind);
}

function build(d: Json): Decision {
  const action = d.getString("action");
  if (action == "continue") return Decision.continue_();
  if (action == "reject") {
    const hs = d.getArray("headers");
    const headers = new Array<string[]>();
    for (let i = 0; i < hs.length; i++) headers.push([hs[i].at(0)!.asString(), hs[i].at(1)!.asString()]);
    return Decision.reject(<i32>d.getNumber("status"), headers, d.getString("body"));
  }
  if (action != "modify") return Decision.fail("unknown action " + action);
  const m: Modify = Decision.modify();
  const ops = d.getArray("ops");
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const kind = op.getString("op");
    const name = op.getString("name");
    const value = op.getString("value");
    if (kind == "setRequestHeader") m.setRequestHeader(name, value);
    else if (kind == "addRequestHeader") m.addRequestHeader(name, value);
    else if (kind == "removeRequestHeader") m.removeRequestHeader(name);
    else if (kind == "setPath") m.setPath(op.getString("path"));
    else if (kind == "setQuery") m.setQuery(op.getString("query"));
    else if (kind == "setAuthority") m.setAuthority(op.getString("authority"));
    else if (kind == "setResponseHeader") m.setResponseHeader(name, value);
    else if (kind == "addResponseHeader") m.addResponseHeader(name, value);
    else if (kind == "removeResponseHeader") m.removeResponseHeader(name);
    else if (kind == "setMetadata") m.setMetadata(op.getString("key"), value);
    else return Decision.fail("unknown op " + kind);
  }
  return m;
}

function handle(req: Request): Decision {
  const d = fixed;
  if (d !== null) return build(d);
  const kind = req.header("x-sdk-test");
  if (kind !== null) return probe(kind, req);
  return Decision.reject(200, [["content-type", "application/json"]], decoded(req).toString());
}

export function on_request(): i32 {
  return run(handle, setup);
}

export function on_response(): i32 {
  return run(handle, setup);
}
