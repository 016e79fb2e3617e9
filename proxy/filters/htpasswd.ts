// The users of a basic-auth Secret's `.htpasswd`: "name:hash" lines as Apache's htpasswd writes
// them. Accepted hashes: bcrypt ($2y$/$2b$/$2a$, `htpasswd -B`, the one to choose), Apache MD5
// ($apr1$, htpasswd's default and what most ingress-nginx auth files hold), SHA-1 ({SHA},
// `htpasswd -s`, the only one Envoy Gateway takes) and salted SHA-1 ({SSHA}, as nginx). crypt(3)
// DES and plain text are refused: a line the gateway cannot check must be a visible error, not a
// user who can never sign in.
import { createHash, timingSafeEqual } from "node:crypto";
import bcrypt from "bcryptjs";

export type HashScheme = "bcrypt" | "apr1" | "sha1" | "ssha";

export interface PasswordHash {
  scheme: HashScheme;
  /** the hash as the file holds it */
  hash: string;
}

export interface Htpasswd {
  users: Map<string, PasswordHash>;
  /** one per refused line: "line 3: ..." */
  problems: string[];
}

const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
const APR1 = /^\$apr1\$[^$]{1,8}\$[./A-Za-z0-9]{22}$/;
const SHA1 = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;
const SSHA = /^\{SSHA\}[A-Za-z0-9+/]+=*$/;

function schemeOf(hash: string): HashScheme | string {
  if (BCRYPT.test(hash)) return "bcrypt";
  if (APR1.test(hash)) return "apr1";
  if (SHA1.test(hash)) return "sha1";
  if (SSHA.test(hash) && Buffer.from(hash.slice(6), "base64").length > 20) return "ssha";
  if (/^\$[156]\$/.test(hash)) return "an MD5/SHA-256/SHA-512 crypt(3) hash";
  if (/^[./A-Za-z0-9]{13}$/.test(hash)) return "a crypt(3) DES hash";
  return "not a password hash (plain text?)";
}

export function parseHtpasswd(text: string): Htpasswd {
  const users = new Map<string, PasswordHash>();
  const problems: string[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      problems.push(`line ${i + 1}: not "user:hash"`);
      continue;
    }
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const scheme = schemeOf(hash);
    if (scheme !== "bcrypt" && scheme !== "apr1" && scheme !== "sha1" && scheme !== "ssha") {
      problems.push(
        `line ${i + 1} (${name}): ${scheme}; use bcrypt (htpasswd -B), Apache MD5 (htpasswd -m) or SHA-1 (htpasswd -s)`,
      );
      continue;
    }
    if (users.has(name)) problems.push(`line ${i + 1}: user ${name} again (the first line counts)`);
    else users.set(name, { scheme, hash });
  }
  return { users, problems };
}

/** Why a `.htpasswd` cannot serve (the Secret's problem for the policy's status), or null. */
export function htpasswdProblem(text: string): string | null {
  const parsed = parseHtpasswd(text);
  if (parsed.problems.length > 0) return parsed.problems.join("; ");
  if (parsed.users.size === 0) return "no users";
  return null;
}

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

/** Whether `password` matches; bcrypt answers asynchronously (it yields while it works). */
export function verifyPassword(h: PasswordHash, password: string): boolean | Promise<boolean> {
  switch (h.scheme) {
    case "bcrypt":
      return bcrypt.compare(password, h.hash);
    case "apr1": {
      const salt = h.hash.slice(6, h.hash.indexOf("$", 6));
      return sameBytes(Buffer.from(apr1(password, salt)), Buffer.from(h.hash));
    }
    case "sha1":
      return sameBytes(
        createHash("sha1").update(password).digest(),
        Buffer.from(h.hash.slice(5), "base64"),
      );
    case "ssha": {
      const stored = Buffer.from(h.hash.slice(6), "base64");
      const salt = stored.subarray(20);
      const digest = createHash("sha1").update(password).update(salt).digest();
      return sameBytes(digest, stored.subarray(0, 20));
    }
  }
}

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Apache's MD5-crypt ("$apr1$salt$hash"), as apr_md5_encode computes it. */
export function apr1(password: string, salt: string): string {
  const magic = "$apr1$";
  const pw = Buffer.from(password);
  const md5 = () => createHash("md5");
  const ctx = md5().update(pw).update(magic).update(salt);
  let final = md5().update(pw).update(salt).update(pw).digest();
  for (let left = pw.length; left > 0; left -= 16)
    ctx.update(final.subarray(0, Math.min(left, 16)));
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.alloc(1) : pw.subarray(0, 1));
  final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const c = md5();
    c.update(i & 1 ? pw : final);
    if (i % 3) c.update(salt);
    if (i % 7) c.update(pw);
    c.update(i & 1 ? final : pw);
    final = c.digest();
  }
  let out = "";
  const to64 = (v: number, n: number) => {
    for (; n > 0; n--, v >>= 6) out += ITOA64[v & 0x3f];
  };
  const f = final;
  to64((f[0]! << 16) | (f[6]! << 8) | f[12]!, 4);
  to64((f[1]! << 16) | (f[7]! << 8) | f[13]!, 4);
  to64((f[2]! << 16) | (f[8]! << 8) | f[14]!, 4);
  to64((f[3]! << 16) | (f[9]! << 8) | f[15]!, 4);
  to64((f[4]! << 16) | (f[10]! << 8) | f[5]!, 4);
  to64(f[11]!, 2);
  return `${magic}${salt}$${out}`;
}
