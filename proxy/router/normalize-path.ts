// Request paths are normalized before they are matched, and the normalized path is what the
// backend receives: a gateway that matches "/public/../admin" against a "/public" rule and
// forwards it as written lets every backend that resolves dot-segments reach "/admin" past the
// rules attached there (Envoy's CVE-2019-9901). The steps follow RFC 3986 §6.2.2 (percent-encoding
// of unreserved characters decoded, the rest uppercased, dot-segments removed) plus what Envoy's
// edge settings and Envoy Gateway's ClientTrafficPolicy do by default: backslashes are separators
// (as browsers and many backends treat them), repeated slashes are merged, and escaped slashes
// (%2F, %5C) — which a backend may decode into separators after we matched — are unescaped and
// answered with a redirect to the path we would match.
export type EscapedSlashesAction = "KeepUnchanged" | "RejectRequest" | "UnescapeAndRedirect";

export interface PathNormalization {
  /** "//a///b" → "/a/b" */
  mergeSlashes: boolean;
  escapedSlashes: EscapedSlashesAction;
}

export const DEFAULT_PATH_NORMALIZATION: PathNormalization = {
  mergeSlashes: true,
  escapedSlashes: "UnescapeAndRedirect",
};

export type NormalizedPath =
  | { kind: "ok"; path: string }
  /** the path held escaped slashes: answer 307 to `path` (UnescapeAndRedirect) */
  | { kind: "redirect"; path: string }
  | { kind: "reject"; detail: string };

const SLASH = 47;
const BACKSLASH = 92;
const DOT = 46;
const PERCENT = 37;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~"
function isUnreserved(b: number): boolean {
  return (
    (b >= 65 && b <= 90) ||
    (b >= 97 && b <= 122) ||
    (b >= 48 && b <= 57) ||
    b === 45 ||
    b === 46 ||
    b === 95 ||
    b === 126
  );
}

const HEX = "0123456789ABCDEF";

/**
 * Normalizes an origin-form path (no query). Returns the input string itself when it is already
 * normal, so the common case allocates nothing.
 */
export function normalizePath(path: string, opts: PathNormalization): NormalizedPath {
  if (path.charCodeAt(0) !== SLASH) return { kind: "reject", detail: "path must start with /" };
  if (isNormal(path, opts.mergeSlashes)) return { kind: "ok", path };
  let decoded = "";
  let escapedSlash = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === BACKSLASH) {
      decoded += "/";
      continue;
    }
    if (c !== PERCENT) {
      decoded += path[i];
      continue;
    }
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) {
      return {
        kind: "reject",
        detail: `invalid percent-encoding in path at offset ${i} (${JSON.stringify(path.slice(i, i + 3))})`,
      };
    }
    const b = hi * 16 + lo;
    i += 2;
    if (b === SLASH || b === BACKSLASH) {
      switch (opts.escapedSlashes) {
        case "RejectRequest":
          return { kind: "reject", detail: "escaped slash (%2F or %5C) in path" };
        case "UnescapeAndRedirect":
          escapedSlash = true;
          decoded += "/";
          continue;
        case "KeepUnchanged":
          decoded += b === SLASH ? "%2F" : "%5C";
          continue;
      }
    }
    decoded += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[hi]}${HEX[lo]}`;
  }
  const out = removeDotSegments(opts.mergeSlashes ? mergeSlashes(decoded) : decoded);
  return escapedSlash ? { kind: "redirect", path: out } : { kind: "ok", path: out };
}

// One pass over the path: nothing to decode, no backslash, no dot-segment, no repeated slash.
function isNormal(path: string, merge: boolean): boolean {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return false;
    if (c !== SLASH) continue;
    const next = path.charCodeAt(i + 1);
    if (next === SLASH && merge) return false;
    if (next === DOT) {
      // "/." or "/.." followed by "/" or the end is a dot-segment
      const a = path.charCodeAt(i + 2);
      if (i + 2 === n || a === SLASH) return false;
      if (a === DOT && (i + 3 === n || path.charCodeAt(i + 3) === SLASH)) return false;
    }
  }
  return true;
}

function mergeSlashes(p: string): string {
  return p.replace(/\/{2,}/g, "/");
}

/** RFC 3986 §5.2.4 on an absolute path, segment by segment. */
export function removeDotSegments(p: string): string {
  const segments = p.split("/");
  const out: string[] = [];
  // segments[0] is "" (the path starts with "/")
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === ".") {
      if (last) out.push("");
    } else if (s === "..") {
      out.pop();
      if (last) out.push("");
    } else out.push(s);
  }
  return `/${out.join("/")}`;
}
