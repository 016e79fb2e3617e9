// RE2-syntax, full-match regular expressions on the hot path.
//
// Measured on Node 26 (a 30-char path against /api/v[0-9]+/users/[a-z0-9-]+, 200k runs):
//   V8 backtracking engine ~21 ns, re2js ~570 ns, V8 linear engine (flag `l`) ~840 ns.
// So patterns written in a conservative RE2 subset whose meaning is identical in JavaScript run
// on V8's fast engine with `--enable-experimental-regexp-engine-on-excessive-backtracks`: V8
// switches a match to its linear-time engine once it backtracks too much, so no pattern can
// backtrack catastrophically (RE2 syntax has no backreferences or lookaround, which the linear
// engine cannot run). That fallback does not work with the `u` flag, so no flags are used (paths
// and header values are ASCII/latin1 strings). Anything outside the subset runs on re2js, which
// is linear by construction. Both are compiled once, when a config is loaded.
import v8 from "node:v8";
import { createRequire } from "node:module";
import type { RE2JS as RE2JSClass } from "re2js";

// re2js is loaded on first use only: most configs never need it (~5 MB of RSS per worker).
let re2: typeof RE2JSClass | null = null;
function RE2(): typeof RE2JSClass {
  re2 ??= (createRequire(import.meta.url)("re2js") as { RE2JS: typeof RE2JSClass }).RE2JS;
  return re2;
}

export const V8_REGEXP_FLAG = "--enable-experimental-regexp-engine-on-excessive-backtracks";
v8.setFlagsFromString(V8_REGEXP_FLAG);

export type StringMatcher = (value: string) => boolean;

export interface CompiledRegex {
  engine: "v8" | "re2js";
  test: StringMatcher;
}

// Returns the JavaScript source for an RE2 pattern when its meaning is the same in both
// dialects, or null when re2js must run it.
export function translateRe2ToJs(pattern: string): string | null {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\") {
      const n = pattern[i + 1];
      if (n === undefined) return null;
      i++;
      if (/[dDwWbB]/.test(n)) out += "\\" + n;
      else if (n === "s") {
        if (inClass) out += "\\t\\n\\f\\r ";
        else out += "[\\t\\n\\f\\r ]";
      } else if (n === "S") {
        if (inClass) return null;
        out += "[^\\t\\n\\f\\r ]";
      } else if (/[nrtf]/.test(n)) out += "\\" + n;
      else if (/[.\\+*?()|[\]{}^$/-]/.test(n)) out += "\\" + n;
      else return null; // \p, \Q…\E, \z, \A, \x{…}, octal, … : leave to re2js
      continue;
    }
    if (inClass) {
      if (c === "[") {
        if (pattern[i + 1] === ":") return null; // [[:alpha:]]
        out += "\\[";
        continue;
      }
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") {
        out += "^";
        i++;
      }
      if (pattern[i + 1] === "]") {
        // RE2: a leading ']' is a literal
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(") {
      if (pattern[i + 1] === "?") {
        if (pattern[i + 2] === ":") {
          out += "(?:";
          i += 2;
          continue;
        }
        return null; // flags, named groups: re2js
      }
      out += c;
      continue;
    }
    if (c === "{") {
      // only well-formed counted repetition {n}, {n,}, {n,m}; RE2 treats other braces as literals
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (!m) {
        out += "\\{";
        continue;
      }
      if (Number(m[1]) > 1000 || (m[3] && Number(m[3]) > 1000)) return null;
      out += m[0];
      i += m[0].length - 1;
      continue;
    }
    if (c === "}") {
      out += "\\}";
      continue;
    }
    if (c === "/") {
      out += "\\/";
      continue;
    }
    if (c === ".") {
      out += "[^\\n]"; // RE2's '.' excludes only \n; JavaScript's also \r, U+2028, U+2029
      continue;
    }
    out += c;
  }
  if (inClass) return null;
  return out;
}

export function compileRegex(pattern: string): CompiledRegex {
  const js = translateRe2ToJs(pattern);
  if (js !== null) {
    try {
      // the translated subset is valid RE2 and means the same in both dialects
      const re = new RegExp(`^(?:${js})$`);
      return { engine: "v8", test: (v: string) => re.test(v) };
    } catch {
      // e.g. an unbalanced group: re2js reports it below
    }
  }
  // re2js validates the syntax exactly as the compiler did; an invalid pattern throws here.
  const compiled = RE2().compile(pattern);
  return { engine: "re2js", test: (v: string) => compiled.matches(v) };
}
