// Built-in `request-transformer`: edits the request before it goes upstream. Header ops run in
// the order remove, rename, set, add; then the path rewrite; then the query edits. The path
// pattern is a linear-time subset of regular expressions (see PathPattern and ../README.md):
// anything outside it is refused by the schema and, should it get here, by setup (every call
// then fails with the reason in the log). Config: ../schema.json.
import {
  run, config, Request, Decision, Modify, Json, asciiLower, queryWith, queryWithout,
} from "../../../assemblyscript/assembly/index";

const LIT = 0;
/** ([^/]+) */
const SEG_PLUS = 1;
/** ([^/]*) */
const SEG_STAR = 2;
/** (.+) */
const ANY_PLUS = 3;
/** (.*) */
const ANY_STAR = 4;

class Token {
  constructor(public kind: i32, public text: string) {}
}

/**
 * An anchored pattern of literal characters and capture groups. A ([^/]+) or ([^/]*) group
 * ends at the next '/', so it may only be followed by '/' or the end; a (.+) or (.*) group takes
 * the rest, so it must come last. With those rules one left-to-right pass decides the match,
 * exactly as a backtracking regex engine would: no input makes it slower than linear.
 */
class PathPattern {
  tokens: Token[] = [];
  groups: i32 = 0;
  error: string | null = null;

  static parse(src: string): PathPattern {
    const p = new PathPattern();
    p.compile(src);
    return p;
  }

  private compile(src: string): void {
    let s = src;
    if (s.startsWith("^")) s = s.substring(1);
    let lit = "";
    let i = 0;
    while (i < s.length) {
      const c = s.charAt(i);
      if (c == "\\") {
        if (i + 1 >= s.length || "\\.()[]{}*+?|^$/-".indexOf(s.charAt(i + 1)) < 0) {
          this.fail(i, "only \\ before one of \\.()[]{}*+?|^$/- is supported");
          return;
        }
        lit += s.charAt(i + 1);
        i += 2;
        continue;
      }
      if (c == "$") {
        if (i != s.length - 1) {
          this.fail(i, "$ is only supported at the end");
          return;
        }
        i++;
        continue;
      }
      if (c == "(") {
        let kind = -1;
        let len = 0;
        if (s.startsWith("([^/]+)", i)) { kind = SEG_PLUS; len = 7; }
        else if (s.startsWith("([^/]*)", i)) { kind = SEG_STAR; len = 7; }
        else if (s.startsWith("(.+)", i)) { kind = ANY_PLUS; len = 4; }
        else if (s.startsWith("(.*)", i)) { kind = ANY_STAR; len = 4; }
        if (kind < 0) {
          this.fail(i, "the only groups supported are ([^/]+), ([^/]*), (.+) and (.*)");
          return;
        }
        if (lit.length > 0) this.tokens.push(new Token(LIT, lit));
        lit = "";
        this.tokens.push(new Token(kind, ""));
        this.groups++;
        i += len;
        continue;
      }
      if ("()[]{}*+?|.^".indexOf(c) >= 0) {
        this.fail(i, "'" + c + "' is not supported (escape it with \\ to match it literally)");
        return;
      }
      lit += c;
      i++;
    }
    if (lit.length > 0) this.tokens.push(new Token(LIT, lit));
    if (this.groups > 9) {
      this.error = "path.pattern: at most 9 groups";
      return;
    }
    // the rules that keep matching a single pass
    for (let k = 0; k < this.tokens.length; k++) {
      const t = this.tokens[k];
      const last = k == this.tokens.length - 1;
      if ((t.kind == ANY_PLUS || t.kind == ANY_STAR) && !last) {
        this.error = "path.pattern: (.+) and (.*) must end the pattern";
        return;
      }
      if ((t.kind == SEG_PLUS || t.kind == SEG_STAR) && !last) {
        const next = this.tokens[k + 1];
        if (next.kind != LIT || !next.text.startsWith("/")) {
          this.error = "path.pattern: a ([^/]+) or ([^/]*) group must be followed by / or the end";
          return;
        }
      }
    }
  }

  private fail(at: i32, why: string): void {
    this.error = "path.pattern: " + why + " (at character " + at.toString() + ")";
  }

  /** The captures (index 0 unused) when `path` matches as a whole, else null. */
  match(path: string): string[] | null {
    const caps = new Array<string>(this.groups + 1);
    caps[0] = path;
    let pos = 0;
    let g = 1;
    for (let k = 0; k < this.tokens.length; k++) {
      const t = this.tokens[k];
      if (t.kind == LIT) {
        if (!path.startsWith(t.text, pos)) return null;
        pos += t.text.length;
        continue;
      }
      let end = path.length;
      if (t.kind == SEG_PLUS || t.kind == SEG_STAR) {
        const slash = path.indexOf("/", pos);
        if (slash >= 0) end = slash;
      }
      if ((t.kind == SEG_PLUS || t.kind == ANY_PLUS) && end == pos) return null;
      caps[g++] = path.substring(pos, end);
      pos = end;
    }
    return pos == path.length ? caps : null;
  }
}

/** A replacement: literal text and $1..$9 references ($$ is a literal $). */
class Replacement {
  parts: string[] = [];
  /** per part: 0 = literal, n = group n */
  refs: i32[] = [];
  error: string | null = null;

  static parse(src: string, groups: i32): Replacement {
    const r = new Replacement();
    r.compile(src, groups);
    return r;
  }

  private compile(src: string, groups: i32): void {
    if (!src.startsWith("/")) {
      this.error = "path.replacement must start with /";
      return;
    }
    let lit = "";
    for (let i = 0; i < src.length; i++) {
      const c = src.charAt(i);
      if (c != "$") {
        lit += c;
        continue;
      }
      const d = i + 1 < src.length ? src.charCodeAt(i + 1) : 0;
      if (d == 36) {
        lit += "$";
        i++;
        continue;
      }
      const n = d - 48;
      if (n < 1 || n > 9) {
        this.error = "path.replacement: $ must be followed by a group number 1-9 or $";
        return;
      }
      if (n > groups) {
        this.error = "path.replacement: $" + n.toString() + " refers to a group the pattern does not have";
        return;
      }
      if (lit.length > 0) {
        this.parts.push(lit);
        this.refs.push(0);
        lit = "";
      }
      this.parts.push("");
      this.refs.push(n);
      i++;
    }
    if (lit.length > 0) {
      this.parts.push(lit);
      this.refs.push(0);
    }
  }

  apply(caps: string[]): string {
    let out = "";
    for (let i = 0; i < this.parts.length; i++) out += this.refs[i] == 0 ? this.parts[i] : caps[this.refs[i]];
    return out;
  }
}

class NameValue {
  constructor(public name: string, public value: string) {}
}

let removeNames: string[] = [];
let renames: NameValue[] = [];
let sets: NameValue[] = [];
let adds: NameValue[] = [];
let pattern: PathPattern | null = null;
let replacement: Replacement | null = null;
let addQuery: NameValue[] = [];
let removeQuery: string[] = [];

function pairs(list: Json[], a: string, b: string, lower: bool): NameValue[] {
  const out = new Array<NameValue>();
  for (let i = 0; i < list.length; i++) {
    const n = list[i].getString(a);
    out.push(new NameValue(lower ? asciiLower(n) : n, list[i].getString(b)));
  }
  return out;
}

function setup(): string | null {
  const c = config();
  const rm = c.getStrings("remove");
  for (let i = 0; i < rm.length; i++) removeNames.push(asciiLower(rm[i]));
  renames = pairs(c.getArray("rename"), "from", "to", true);
  for (let i = 0; i < renames.length; i++) renames[i].value = asciiLower(renames[i].value);
  sets = pairs(c.getArray("set"), "name", "value", true);
  adds = pairs(c.getArray("add"), "name", "value", true);
  const p = c.getObject("path");
  if (p !== null) {
    const pat = PathPattern.parse(p.getString("pattern"));
    if (pat.error !== null) return "request-transformer: " + pat.error!;
    const rep = Replacement.parse(p.getString("replacement"), pat.groups);
    if (rep.error !== null) return "request-transformer: " + rep.error!;
    pattern = pat;
    replacement = rep;
  }
  addQuery = pairs(c.getArray("addQuery"), "name", "value", false);
  removeQuery = c.getStrings("removeQuery");
  return null;
}

function onRequest(req: Request): Decision {
  const m = new Modify();
  for (let i = 0; i < removeNames.length; i++) m.removeRequestHeader(removeNames[i]);
  for (let i = 0; i < renames.length; i++) {
    const r = renames[i];
    const values = req.headerValues(r.name);
    if (values.length == 0) continue;
    m.removeRequestHeader(r.name);
    m.removeRequestHeader(r.value);
    for (let k = 0; k < values.length; k++) m.addRequestHeader(r.value, values[k]);
  }
  for (let i = 0; i < sets.length; i++) m.setRequestHeader(sets[i].name, sets[i].value);
  for (let i = 0; i < adds.length; i++) m.addRequestHeader(adds[i].name, adds[i].value);
  const pat = pattern;
  if (pat !== null) {
    const path = req.path;
    const caps = pat.match(path);
    if (caps !== null) {
      const next = replacement!.apply(caps);
      if (next != path) m.setPath(next);
    }
  }
  if (addQuery.length > 0 || removeQuery.length > 0) {
    const q0 = req.query;
    let q = removeQuery.length > 0 ? queryWithout(q0, removeQuery) : q0;
    for (let i = 0; i < addQuery.length; i++) q = queryWith(q, addQuery[i].name, addQuery[i].value);
    if (q != q0) m.setQuery(q);
  }
  return m.orContinue();
}

export function on_request(): i32 {
  return run(onRequest, setup);
}
