// What Maglev hashes for one request (a cluster's hashOn): the client address by default, a
// request header's value, or a cookie's. A client without the cookie gets a fresh token as its
// key and the cookie set on the response, so its next requests land on the same endpoint
// (session persistence, as Envoy's generated hash cookie).
import { randomBytes } from "node:crypto";
import type { HashOn } from "../config/schema.ts";

export interface HashKey {
  /** null: no key (a missing header): the balancer falls back to round robin */
  key: string | null;
  /** a Set-Cookie value the response must carry */
  setCookie: string | null;
}

const NO_COOKIE: Pick<HashKey, "setCookie"> = { setCookie: null };

// RFC 6265 §4.1.1 path-value: no CTLs and no ";" (which would start another attribute); spaces
// are left out too. A path that is not one is not sent: the cookie gets Path=/ (and the
// Generation reports it).
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/;

/** Why a hashOn cookie path cannot go into Set-Cookie, or null when it can. */
export function cookiePathProblem(path: string | undefined): string | null {
  if (path === undefined || COOKIE_PATH.test(path)) return null;
  return `hashOn cookie path ${JSON.stringify(path)} is not a cookie path (printable ASCII without ";" or spaces); the cookie is set with Path=/`;
}

export function hashKeyFor(
  hashOn: HashOn | undefined,
  client: string,
  headers: Record<string, string | string[] | undefined>,
): HashKey {
  if (hashOn === undefined || hashOn.type === "SourceIP") return { key: client, ...NO_COOKIE };
  if (hashOn.type === "Header") {
    // header names are lowercase here (the compiler lowercases them; a hand-written config may not)
    const v = headers[hashOn.name.toLowerCase()];
    return { key: v === undefined ? null : typeof v === "string" ? v : v.join(", "), ...NO_COOKIE };
  }
  const found = cookieValue(headers.cookie, hashOn.name);
  if (found !== null) return { key: found, ...NO_COOKIE };
  const token = randomBytes(12).toString("base64url");
  return {
    key: token,
    setCookie: `${hashOn.name}=${token}; Path=${cookiePathProblem(hashOn.path) === null ? (hashOn.path ?? "/") : "/"}; HttpOnly${hashOn.ttlSeconds !== undefined ? `; Max-Age=${hashOn.ttlSeconds}` : ""}`,
  };
}

/** The value of cookie `name` in Cookie header(s), or null when absent or empty. */
export function cookieValue(header: string | string[] | undefined, name: string): string | null {
  return firstCookie(header, name) || null;
}

/**
 * The value of the first cookie `name` in Cookie header(s), empty included, or undefined
 * (RFC 6265 §5.4: "; "-separated).
 */
export function firstCookie(
  header: string | string[] | undefined,
  name: string,
): string | undefined {
  if (header === undefined) return undefined;
  for (const line of typeof header === "string" ? [header] : header) {
    for (const part of line.split(";")) {
      const eq = part.indexOf("=");
      if (eq >= 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
