// Built-in `jwt-auth`: accepts a request only with a valid JWS-signed JWT (HS256, RS256, ES256),
// verified by the host (`verify_signature`), and hands chosen claims to the upstream (request
// headers) and to later plugins (metadata `jwt.<claim>`). A refusal is 401 with an RFC 6750
// WWW-Authenticate challenge; no answer ever echoes the token or its claims.
// Config: ../schema.json; behaviour: ../README.md.
import {
  run, config, Request, Decision, Modify, Json, JsonKind, Alg, verifySignature, nowMs, log, LogLevel,
  parseJson, base64DecodeRaw, base64Decode, base64UrlDecode, numberText, quote, asciiLower, trimOws,
  isHeaderValueSafe, queryParam, queryWithout, cacheGet, cacheSet, cacheGetBytes, Writer,
} from "../../../assemblyscript/assembly/index";

/** A verification key and the one algorithm it may verify (no algorithm confusion). */
class Key {
  warned: bool = false;
  constructor(public kid: string | null, public alg: i32, public bytes: Uint8Array, public label: string) {}
}

class ClaimHeader {
  constructor(public claim: string, public header: string) {}
}

let keys: Key[] = [];
let issuers: string[] = [];
let audiences: string[] = [];
let skew: f64 = 60;
let requireExp: bool = true;
let headerName = "authorization";
let queryName = "";
let cookieName = "";
let claimHeaders: ClaimHeader[] = [];
let claimMeta: string[] = [];
let forwardToken: bool = true;
let cacheSeconds: f64 = 300;
let realm = "rauta";

function algOf(name: string): i32 {
  if (name == "HS256") return Alg.HS256;
  if (name == "RS256") return Alg.RS256;
  if (name == "ES256") return Alg.ES256;
  return 0;
}

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The key a JWK describes, or null (with why) when it is not one this plugin can verify with. */
function jwkKey(jwk: Json, where: string, wantAlg: i32): Key | null {
  const kty = jwk.getString("kty");
  const use = jwk.getString("use", "sig");
  if (use != "sig") return null;
  const kid = jwk.has("kid") ? jwk.getString("kid") : null;
  let alg: i32 = 0;
  if (kty == "RSA") alg = Alg.RS256;
  else if (kty == "EC" && jwk.getString("crv") == "P-256") alg = Alg.ES256;
  else if (kty == "oct") alg = Alg.HS256;
  if (alg == 0) return null;
  if (jwk.has("alg") && algOf(jwk.getString("alg")) != alg) return null;
  if (wantAlg != 0 && wantAlg != alg) return null;
  if (alg == Alg.HS256) {
    const k = base64UrlDecode(jwk.getString("k"));
    if (k === null || k.length == 0) return null;
    return new Key(kid, alg, k, where);
  }
  // the host parses RSA and EC keys from their JWK JSON (and caches them by that text)
  return new Key(kid, alg, utf8(jwk.toString()), where);
}

function setup(): string | null {
  const c = config();
  const list = c.getArray("keys");
  for (let i = 0; i < list.length; i++) {
    const k = list[i];
    const where = "keys[" + i.toString() + "]";
    const alg = algOf(k.getString("alg"));
    if (alg == 0) return "jwt-auth: " + where + ".alg must be HS256, RS256 or ES256";
    const kid = k.has("kid") ? k.getString("kid") : null;
    if (alg == Alg.HS256) {
      let bytes: Uint8Array | null = null;
      if (k.has("secret")) bytes = utf8(k.getString("secret"));
      else if (k.has("secretBase64")) {
        const s = k.getString("secretBase64");
        bytes = base64Decode(s);
        if (bytes === null) bytes = base64UrlDecode(s);
        if (bytes === null) return "jwt-auth: " + where + ".secretBase64 is not base64";
      }
      if (bytes === null || bytes.length == 0) return "jwt-auth: " + where + " (HS256) needs secret or secretBase64";
      // RFC 7518 §3.2: an HS256 key of fewer than 256 bits can be brute-forced offline
      if (bytes.length < 32) log(LogLevel.Warn, "jwt-auth: " + where + " is an HS256 secret of under 32 bytes");
      keys.push(new Key(kid, alg, bytes, where));
      continue;
    }
    if (k.has("pem")) {
      const pem = k.getString("pem");
      if (!pem.startsWith("-----BEGIN ")) return "jwt-auth: " + where + ".pem is not PEM text";
      keys.push(new Key(kid, alg, utf8(pem), where));
      continue;
    }
    const jwk = k.getObject("jwk");
    if (jwk === null) return "jwt-auth: " + where + " (" + k.getString("alg") + ") needs pem or jwk";
    const key = jwkKey(jwk, where, alg);
    if (key === null) return "jwt-auth: " + where + ".jwk is not a " + k.getString("alg") + " signing key";
    if (kid !== null) key.kid = kid;
    keys.push(key);
  }
  const jwks = c.getObject("jwks");
  if (jwks !== null) {
    const jl = jwks.getArray("keys");
    for (let i = 0; i < jl.length; i++) {
      const key = jwkKey(jl[i], "jwks.keys[" + i.toString() + "]", 0);
      if (key === null) log(LogLevel.Info, "jwt-auth: skipping jwks.keys[" + i.toString() + "]: not an RS256, ES256 or HS256 signing key");
      else keys.push(key);
    }
  }
  if (keys.length == 0) return "jwt-auth: no usable key in keys or jwks";
  issuers = c.getStrings("issuers");
  if (c.has("issuer")) issuers.push(c.getString("issuer"));
  audiences = c.getStrings("audiences");
  skew = c.getNumber("clockSkewSeconds", 60);
  requireExp = c.getBool("requireExpiration", true);
  headerName = asciiLower(c.getString("header", "authorization"));
  queryName = c.getString("queryParam", "");
  cookieName = c.getString("cookie", "");
  const ch = c.getArray("claimsToHeaders");
  for (let i = 0; i < ch.length; i++) claimHeaders.push(new ClaimHeader(ch[i].getString("claim"), asciiLower(ch[i].getString("header"))));
  claimMeta = c.getStrings("claimsToMetadata");
  forwardToken = c.getBool("forwardToken", true);
  cacheSeconds = c.getNumber("verifiedTokenCacheSeconds", 300);
  realm = c.getString("realm", "rauta");
  return null;
}

// ---- refusals --------------------------------------------------------------------------------

/** An RFC 9110 quoted-string. */
function quoted(s: string): string {
  return '"' + s.replaceAll("\\", "\\\\").replaceAll('"', '\\"') + '"';
}

function unauthorized(description: string, missing: bool): Decision {
  // RFC 6750 §3.1: a request without credentials gets the challenge without an error code
  let challenge = "Bearer realm=" + quoted(realm);
  if (!missing) challenge += ", error=\"invalid_token\", error_description=" + quoted(description);
  const body = '{"error":' + (missing ? '"missing_token"' : '"invalid_token"') + ',"error_description":' + quote(description) + "}";
  return Decision.reject(
    401,
    [
      ["www-authenticate", challenge],
      ["content-type", "application/json"],
      ["cache-control", "no-store"],
    ],
    body,
  );
}

// ---- finding the token -------------------------------------------------------------------------

const FROM_HEADER = 1;
const FROM_QUERY = 2;
const FROM_COOKIE = 3;

class Found {
  constructor(public token: string, public source: i32) {}
}

function bearer(value: string): string | null {
  const v = trimOws(value);
  if (v.length > 7 && asciiLower(v.substring(0, 7)) == "bearer ") return trimOws(v.substring(7));
  return null;
}

function cookieValue(req: Request, name: string): string | null {
  const all = req.headerValues("cookie");
  for (let i = 0; i < all.length; i++) {
    const parts = all[i].split(";");
    for (let k = 0; k < parts.length; k++) {
      const p = trimOws(parts[k]);
      const eq = p.indexOf("=");
      if (eq <= 0 || p.substring(0, eq) != name) continue;
      let v = p.substring(eq + 1);
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.substring(1, v.length - 1);
      return v;
    }
  }
  return null;
}

/** The Cookie header without the token's cookie ("" when nothing is left). */
function cookiesWithout(req: Request, name: string): string {
  const kept = new Array<string>();
  const all = req.headerValues("cookie");
  for (let i = 0; i < all.length; i++) {
    const parts = all[i].split(";");
    for (let k = 0; k < parts.length; k++) {
      const p = trimOws(parts[k]);
      if (p.length == 0) continue;
      const eq = p.indexOf("=");
      if (eq > 0 && p.substring(0, eq) == name) continue;
      kept.push(p);
    }
  }
  return kept.join("; ");
}

function findToken(req: Request): Found | null {
  const h = req.header(headerName);
  if (h !== null) {
    const b = bearer(h);
    if (b !== null) return new Found(b, FROM_HEADER);
    // a custom header may carry the bare token; Authorization with another scheme is not ours
    if (headerName != "authorization") {
      const t = trimOws(h);
      if (t.length > 0) return new Found(t, FROM_HEADER);
    }
  }
  if (queryName.length > 0) {
    const q = queryParam(req.query, queryName);
    if (q !== null && q.length > 0) return new Found(q, FROM_QUERY);
  }
  if (cookieName.length > 0) {
    const c = cookieValue(req, cookieName);
    if (c !== null && c.length > 0) return new Found(c, FROM_COOKIE);
  }
  return null;
}

// ---- verification --------------------------------------------------------------------------------

function isB64UrlOrDot(c: u32): bool {
  return c - 65 < 26 || c - 97 < 26 || c - 48 < 10 || c == 0x2d || c == 0x5f || c == 0x2e;
}

function segment(bytes: ArrayBuffer, from: i32, to: i32): Uint8Array | null {
  return base64DecodeRaw(changetype<usize>(bytes) + <usize>from, to - from, true);
}

class Verdict {
  constructor(public claims: Json | null, public error: string) {}
}

function verify(token: string): Verdict {
  const raw = String.UTF8.encode(token);
  const n = raw.byteLength;
  const p = changetype<usize>(raw);
  let d1 = -1;
  let d2 = -1;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = <u32>load<u8>(p + <usize>i);
    if (!isB64UrlOrDot(c)) return new Verdict(null, "malformed token");
    if (c == 0x2e) {
      dots++;
      if (dots == 1) d1 = i;
      else if (dots == 2) d2 = i;
    }
  }
  if (dots != 2) return new Verdict(null, dots == 4 ? "encrypted tokens (JWE) are not supported" : "malformed token");
  const hb = segment(raw, 0, d1);
  if (hb === null) return new Verdict(null, "malformed token header");
  const header = parseJson(hb);
  if (header === null || !header.isObject) return new Verdict(null, "malformed token header");
  const algName = header.getString("alg");
  if (algName == "none" || algName.length == 0) return new Verdict(null, "unsigned tokens are not accepted");
  const alg = algOf(algName);
  if (alg == 0) return new Verdict(null, "unsupported alg");
  if (header.has("crit")) return new Verdict(null, "unsupported critical header parameter");
  const kidJ = header.get("kid");
  let kid: string | null = null;
  if (kidJ !== null) {
    if (!kidJ.isString) return new Verdict(null, "malformed kid");
    kid = kidJ.str;
  }
  const sig = segment(raw, d2 + 1, n);
  if (sig === null || sig.length == 0) return new Verdict(null, "malformed signature");
  if (alg == Alg.ES256 && sig.length != 64) return new Verdict(null, "invalid signature");
  const data = Uint8Array.wrap(raw, 0, d2);
  // a token naming a kid is checked with that key (keys without a kid serve any token); a token
  // without one with every key of its algorithm. Only keys of the token's alg: an RSA public key
  // never becomes an HMAC secret.
  let tried = 0;
  let valid = false;
  let kidKnown = false;
  for (let i = 0; i < keys.length && !valid; i++) {
    const k = keys[i];
    if (kid !== null && k.kid !== null) {
      if (k.kid! != kid) continue;
      kidKnown = true;
    }
    if (k.alg != alg) continue;
    tried++;
    const r = verifySignature(alg, k.bytes, data, sig);
    if (r == 1) valid = true;
    else if (r < 0 && !k.warned) {
      k.warned = true;
      log(LogLevel.Error, "jwt-auth: the host cannot use " + k.label + " as an " + algName + " key");
    }
  }
  if (!valid) {
    if (tried == 0) {
      if (kid !== null && !kidKnown) return new Verdict(null, "unknown kid");
      return new Verdict(null, "no key for alg " + algName);
    }
    return new Verdict(null, "invalid signature");
  }
  const pb = segment(raw, d1 + 1, d2);
  if (pb === null) return new Verdict(null, "malformed token payload");
  const claims = parseJson(pb);
  if (claims === null || !claims.isObject) return new Verdict(null, "malformed token payload");
  const now = nowMs() / 1000;
  const exp = claims.get("exp");
  if (exp !== null) {
    if (!exp.isNumber) return new Verdict(null, "malformed exp");
    if (now >= exp.num + skew) return new Verdict(null, "token expired");
  } else if (requireExp) {
    return new Verdict(null, "token has no exp");
  }
  const nbf = claims.get("nbf");
  if (nbf !== null) {
    if (!nbf.isNumber) return new Verdict(null, "malformed nbf");
    if (now + skew < nbf.num) return new Verdict(null, "token not yet valid");
  }
  const iat = claims.get("iat");
  if (iat !== null) {
    if (!iat.isNumber) return new Verdict(null, "malformed iat");
    if (iat.num > now + skew) return new Verdict(null, "token issued in the future");
  }
  if (issuers.length > 0) {
    const iss = claims.get("iss");
    if (iss === null || !iss.isString || !issuers.includes(iss.str)) return new Verdict(null, "issuer not allowed");
  }
  if (audiences.length > 0) {
    const aud = claims.get("aud");
    let ok = false;
    if (aud !== null && aud.isString) ok = audiences.includes(aud.str);
    else if (aud !== null && aud.isArray) {
      const els = aud.elements();
      for (let i = 0; i < els.length && !ok; i++) ok = els[i].isString && audiences.includes(els[i].str);
    }
    if (!ok) return new Verdict(null, "audience not allowed");
  }
  return new Verdict(claims, "");
}

/** A claim as header or metadata text: strings as they are, lists of scalars joined with ",". */
function claimText(v: Json): string {
  if (v.kind == JsonKind.String) return v.str;
  if (v.kind == JsonKind.Number) return numberText(v.num);
  if (v.kind == JsonKind.Bool) return v.bool ? "true" : "false";
  if (v.kind == JsonKind.Array) {
    const els = v.elements();
    const parts = new Array<string>();
    for (let i = 0; i < els.length; i++) {
      if (els[i].isArray || els[i].isObject) return v.toString();
      parts.push(claimText(els[i]));
    }
    return parts.join(",");
  }
  return v.toString();
}

// ---- what a verified token yields, kept by the host ----------------------------------------------
// A verified token's header and metadata changes depend on the token alone, so they are recorded
// (kind, name, value) and kept with cache_set under the token until it expires (exp + skew) or
// verifiedTokenCacheSeconds pass, whichever is first. The same token again replays them: no
// signature check, no JSON. Refusals are never kept. The host scopes the cache to this plugin
// version, so new keys or config start with an empty one.

const SET_HEADER: u8 = 1;
const REMOVE_HEADER: u8 = 2;
const SET_META: u8 = 3;

class Recorder {
  w: Writer = new Writer(128);
  count: u32 = 0;
  constructor(public m: Modify) {
    this.w.u32(0);
  }
  op(kind: u8, name: string, value: string): void {
    if (kind == SET_HEADER) this.m.setRequestHeader(name, value);
    else if (kind == REMOVE_HEADER) this.m.removeRequestHeader(name);
    else this.m.setMetadata(name, value);
    this.w.u8(kind).str(name).str(value);
    this.count++;
  }
  bytes(): Uint8Array {
    this.w.patchU32(0, this.count);
    return Uint8Array.wrap(this.w.buf, 0, this.w.n);
  }
}

function readStr(p: usize, end: usize): string | null {
  if (p + 4 > end) return null;
  const len = <usize>load<u32>(p);
  if (p + 4 + len > end) return null;
  return String.UTF8.decodeUnsafe(p + 4, len);
}

/** Replays recorded changes onto m; false when the bytes are not a record (then verify again). */
function replay(rec: Uint8Array, m: Modify): bool {
  let p = rec.dataStart;
  const end = p + <usize>rec.length;
  if (p + 4 > end) return false;
  const count = load<u32>(p);
  p += 4;
  for (let i: u32 = 0; i < count; i++) {
    if (p + 1 > end) return false;
    const kind = load<u8>(p);
    p += 1;
    const name = readStr(p, end);
    if (name === null) return false;
    p += 4 + <usize>String.UTF8.byteLength(name);
    const value = readStr(p, end);
    if (value === null) return false;
    p += 4 + <usize>String.UTF8.byteLength(value);
    if (kind == SET_HEADER) m.setRequestHeader(name, value);
    else if (kind == REMOVE_HEADER) m.removeRequestHeader(name);
    else if (kind == SET_META) m.setMetadata(name, value);
    else return false;
  }
  return true;
}

/** How long a verified token's changes may be reused: never past its exp (+ skew). */
function cacheTtlMs(claims: Json): f64 {
  let ttl = cacheSeconds * 1000;
  const exp = claims.get("exp");
  if (exp !== null && exp.isNumber) ttl = Math.min(ttl, (exp.num + skew) * 1000 - nowMs());
  return ttl;
}

function claimChanges(claims: Json, r: Recorder): void {
  for (let i = 0; i < claimHeaders.length; i++) {
    const ch = claimHeaders[i];
    const v = claims.get(ch.claim);
    // an absent claim removes the header: a client cannot send its own
    if (v === null || v.isNull) {
      r.op(REMOVE_HEADER, ch.header, "");
      continue;
    }
    const text = claimText(v);
    if (!isHeaderValueSafe(text)) {
      log(LogLevel.Warn, "jwt-auth: claim " + ch.claim + " holds CR, LF or NUL; header " + ch.header + " removed");
      r.op(REMOVE_HEADER, ch.header, "");
      continue;
    }
    r.op(SET_HEADER, ch.header, text);
  }
  const sub = claims.get("sub");
  if (sub !== null && sub.isString) r.op(SET_META, "jwt.sub", sub.str);
  const iss = claims.get("iss");
  if (iss !== null && iss.isString) r.op(SET_META, "jwt.iss", iss.str);
  for (let i = 0; i < claimMeta.length; i++) {
    const name = claimMeta[i];
    if (name == "sub" || name == "iss") continue;
    const v = claims.get(name);
    if (v !== null && !v.isNull) r.op(SET_META, "jwt." + name, claimText(v));
  }
}

// What the cache keeps. A token from the header yields the same decision every time (what its
// claims change, then the token's removal), so that decision is kept whole, under the token, and
// a repeat is answered with its bytes as they are: no decoding, no re-encoding. From the query or
// a cookie the decision also depends on the rest of the request, so what the claims change is
// kept (under REPLAY + token) and replayed onto each request's own decision.
const REPLAY = "\u0001";

function isOws(c: u8): bool {
  return c == 32 || c == 9;
}

/**
 * The token's bytes in the header's value, as findToken finds it in the value's text; null if it
 * would find none. Bytes and text agree: the spaces, tabs and "bearer " it looks at are ASCII,
 * which UTF-8 never uses inside a multi-byte character. (A value that is not UTF-8 gives a key
 * nothing was stored under, since keys stored come from text: that token is verified each time.)
 */
function headerToken(v: Uint8Array): Uint8Array | null {
  let a = 0;
  let b = v.length;
  while (a < b && isOws(unchecked(v[a]))) a++;
  while (b > a && isOws(unchecked(v[b - 1]))) b--;
  if (b - a > 7) {
    let scheme = true;
    const want = "bearer ";
    for (let i = 0; i < 7; i++) {
      let c = unchecked(v[a + i]);
      if (c >= 65 && c <= 90) c += 32;
      if (c != <u8>want.charCodeAt(i)) {
        scheme = false;
        break;
      }
    }
    if (scheme) {
      a += 7;
      while (a < b && isOws(unchecked(v[a]))) a++;
      return v.subarray(a, b);
    }
  }
  if (headerName == "authorization" || b == a) return null;
  return v.subarray(a, b);
}

function onRequest(req: Request): Decision {
  if (cacheSeconds > 0) {
    const v = req.headerBytes(headerName);
    if (v !== null) {
      const t = headerToken(v);
      if (t !== null) {
        const whole = cacheGetBytes(t);
        if (whole !== null) return Decision.raw(whole);
      }
    }
  }
  const found = findToken(req);
  if (found === null) return unauthorized("no bearer token", true);
  const fromHeader = found.source == FROM_HEADER;
  let m = new Modify();
  let ttl: f64 = 0;
  const cached = cacheSeconds > 0 && !fromHeader ? cacheGet(REPLAY + found.token) : null;
  if (cached === null || !replay(cached, m)) {
    if (cached !== null) m = new Modify();
    const verdict = verify(found.token);
    const claims = verdict.claims;
    if (claims === null) return unauthorized(verdict.error, false);
    const r = new Recorder(m);
    claimChanges(claims, r);
    if (cacheSeconds > 0) {
      ttl = cacheTtlMs(claims);
      if (!fromHeader) cacheSet(REPLAY + found.token, r.bytes(), ttl);
    }
  }
  if (!forwardToken) {
    if (found.source == FROM_HEADER) m.removeRequestHeader(headerName);
    else if (found.source == FROM_QUERY) m.setQuery(queryWithout(req.query, [queryName]));
    else {
      const rest = cookiesWithout(req, cookieName);
      if (rest.length == 0) m.removeRequestHeader("cookie");
      else m.setRequestHeader("cookie", rest);
    }
  }
  const d = m.orContinue();
  if (fromHeader && ttl > 0) cacheSet(found.token, d.encodedBytes(), ttl);
  return d;
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
