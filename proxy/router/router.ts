// The router of one listener: host index first (exact map, wildcard suffixes by label, then "*"),
// then, inside a virtual host, a path index (exact-path map and prefix map keyed by the
// normalized prefix) so that lookup cost depends on the path's depth, not on the number of
// routes. Among candidates the lowest precedence index wins, exactly as if the compiler's
// precedence-sorted list had been scanned in order. Matchers are compiled once, at load time.
import type { RouteMatch, VirtualHost } from "../config/schema.ts";
import { compileRegex } from "./regex.ts";
import type { StringMatcher } from "./regex.ts";
import { HostIndex } from "./host-index.ts";

export interface RequestView {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string without '?', "" when absent. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface MatchedEntry<R> {
  /** Index in the virtual host's precedence-sorted list. */
  index: number;
  route: R;
  match: RouteMatch;
  /** Length of the matched PathPrefix without a trailing slash (for ReplacePrefixMatch), else -1. */
  prefixLength: number;
  test(req: RequestView): boolean;
}

interface ValueTest {
  name: string;
  test: StringMatcher;
}

function valueTest(name: string, type: "Exact" | "RegularExpression", value: string): ValueTest {
  if (type === "Exact") return { name, test: (v: string) => v === value };
  return { name, test: compileRegex(value).test };
}

function headerValue(h: string | string[] | undefined): string | undefined {
  if (h === undefined) return undefined;
  return typeof h === "string" ? h : h.join(",");
}

// First value of a query parameter, or undefined. Names are matched exactly (case-sensitive).
export function queryParam(query: string, name: string): string | undefined {
  if (query === "") return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf("&", start);
    if (end === -1) end = query.length;
    const eq = query.indexOf("=", start);
    const keyEnd = eq !== -1 && eq < end ? eq : end;
    let key = query.slice(start, keyEnd);
    if (key.includes("%") || key.includes("+")) key = safeDecode(key);
    if (key === name) {
      const raw = keyEnd < end ? query.slice(keyEnd + 1, end) : "";
      return raw.includes("%") || raw.includes("+") ? safeDecode(raw) : raw;
    }
    start = end + 1;
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

export function normalizePrefix(prefix: string): string {
  // "/" → "", "/foo/" → "/foo"
  let p = prefix;
  while (p.endsWith("/")) p = p.slice(0, -1);
  return p;
}

function compileEntry<R>(index: number, route: R, match: RouteMatch): MatchedEntry<R> {
  const headers: ValueTest[] = match.headers.map(h =>
    valueTest(h.name.toLowerCase(), h.type, h.value),
  );
  const query: ValueTest[] = match.queryParams.map(q => valueTest(q.name, q.type, q.value));
  const method = match.method;
  let pathTest: StringMatcher | null = null;
  let prefixLength = -1;
  if (match.path.type === "RegularExpression") pathTest = compileRegex(match.path.value).test;
  else if (match.path.type === "PathPrefix")
    prefixLength = normalizePrefix(match.path.value).length;
  // Path Exact/PathPrefix are guaranteed by the index that produced the candidate.
  const extra = headers.length > 0 || query.length > 0 || method !== undefined || pathTest !== null;
  const test = !extra
    ? () => true
    : (req: RequestView): boolean => {
        if (method !== undefined && req.method !== method) return false;
        if (pathTest !== null && !pathTest(req.path)) return false;
        for (let i = 0; i < headers.length; i++) {
          const h = headers[i]!;
          const v = headerValue(req.headers[h.name]);
          if (v === undefined || !h.test(v)) return false;
        }
        for (let i = 0; i < query.length; i++) {
          const q = query[i]!;
          const v = queryParam(req.query, q.name);
          if (v === undefined || !q.test(v)) return false;
        }
        return true;
      };
  return { index, route, match, prefixLength, test };
}

export class VirtualHostRouter<R> {
  readonly hostname: string;
  private readonly exact = new Map<string, MatchedEntry<R>[]>();
  private readonly prefix = new Map<string, MatchedEntry<R>[]>();
  private readonly other: MatchedEntry<R>[] = [];
  readonly size: number;

  constructor(vh: VirtualHost, resolve: (routeId: string) => R) {
    this.hostname = vh.hostname;
    this.size = vh.routes.length;
    vh.routes.forEach((e, i) => {
      const entry = compileEntry(i, resolve(e.routeId), e.match);
      const p = e.match.path;
      if (p.type === "Exact") push(this.exact, p.value, entry);
      else if (p.type === "PathPrefix") push(this.prefix, normalizePrefix(p.value), entry);
      else this.other.push(entry);
    });
  }

  match(req: RequestView): MatchedEntry<R> | null {
    // candidates come from up to three sources; each list is in precedence order, so a list is
    // scanned only until its first match or until it reaches the best index found so far
    let best: MatchedEntry<R> | null = null;
    const path = req.path;
    if (this.exact.size) best = scan(this.exact.get(path), req, best);
    if (this.prefix.size) {
      // every '/'-boundary of the path is a candidate prefix: "", "/a", "/a/b", ...
      best = scan(this.prefix.get(""), req, best);
      for (let i = 1; i <= path.length; i++) {
        if (i === path.length || path.charCodeAt(i) === 47 /* / */) {
          const list = this.prefix.get(path.slice(0, i));
          if (list !== undefined) best = scan(list, req, best);
        }
      }
    }
    if (this.other.length) best = scan(this.other, req, best);
    return best;
  }
}

function scan<R>(
  list: MatchedEntry<R>[] | undefined,
  req: RequestView,
  best: MatchedEntry<R> | null,
): MatchedEntry<R> | null {
  if (list === undefined) return best;
  const bound = best === null ? Infinity : best.index;
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (e.index >= bound) return best;
    if (e.test(req)) return e;
  }
  return best;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V) {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export class HostRouter<R> {
  private readonly index: HostIndex<VirtualHostRouter<R>>;

  constructor(vhosts: VirtualHost[], resolve: (routeId: string) => R) {
    this.index = new HostIndex(
      vhosts.map(vh => [vh.hostname, new VirtualHostRouter(vh, resolve)] as const),
    );
  }

  /** host: lowercased, without port. */
  virtualHost(host: string): VirtualHostRouter<R> | null {
    return this.index.lookup(host);
  }
}

// "Host" header or :authority → lowercased hostname without port (IPv6 brackets kept).
export function hostOf(authority: string | undefined): string {
  if (!authority) return "";
  let end = authority.length;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf("]");
    end = close === -1 ? end : close + 1;
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon !== -1) end = colon;
  }
  let h = end === authority.length ? authority : authority.slice(0, end);
  if (h.charCodeAt(h.length - 1) === 46 /* . */) h = h.slice(0, -1);
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    if (c >= 65 && c <= 90) return h.toLowerCase();
  }
  return h;
}
