// Header plans: RequestHeaderModifier / ResponseHeaderModifier filters folded, at load time, into
// one plan per route (and per route+backend) that is applied in a single pass over the raw
// header list. Hop-by-hop headers (RFC 9110 §7.6.1) and the names listed in Connection are
// always dropped.
import type { HeaderModifier } from "../config/schema.ts";

export interface HeaderPlan {
  /** lowercased names dropped from the incoming headers (removed or overwritten by set) */
  drop: Set<string>;
  set: Array<[string, string]>;
  add: Array<[string, string]>;
}

export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "http2-settings",
]);

export function emptyPlan(): HeaderPlan {
  return { drop: new Set(), set: [], add: [] };
}

export function isEmptyPlan(p: HeaderPlan): boolean {
  return p.drop.size === 0 && p.set.length === 0 && p.add.length === 0;
}

/** Plan equivalent to applying `base` then `m`. */
export function composePlan(base: HeaderPlan, m: HeaderModifier): HeaderPlan {
  const drop = new Set(base.drop);
  let set = base.set.slice();
  let add = base.add.slice();
  for (const name of m.remove) {
    const l = name.toLowerCase();
    drop.add(l);
    set = set.filter(([n]) => n.toLowerCase() !== l);
    add = add.filter(([n]) => n.toLowerCase() !== l);
  }
  for (const { name, value } of m.set) {
    const l = name.toLowerCase();
    drop.add(l);
    set = set.filter(([n]) => n.toLowerCase() !== l);
    add = add.filter(([n]) => n.toLowerCase() !== l);
    set.push([name, value]);
  }
  for (const { name, value } of m.add) {
    const l = name.toLowerCase();
    const i = set.findIndex(([n]) => n.toLowerCase() === l);
    if (i >= 0) set[i] = [set[i]![0], `${set[i]![1]},${value}`];
    else add.push([name, value]);
  }
  return { drop, set, add };
}

/** A header name in lowercase, without allocating when it already is (the common case). */
export function lowerIfNeeded(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/** Names listed in a Connection header value, lowercased ("close"/"keep-alive" ignored). */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value) return null;
  // the common values name no header: skip the split
  if (value.length <= 10) {
    const l = value.toLowerCase();
    if (l === "keep-alive" || l === "close") return null;
  }
  let out: Set<string> | null = null;
  for (const t of value.split(",")) {
    const n = t.trim().toLowerCase();
    if (n === "" || n === "close" || n === "keep-alive") continue;
    (out ??= new Set()).add(n);
  }
  return out;
}

/**
 * Appends plan.set and plan.add to a flat [name, value, ...] list: `add` appends to an existing
 * value with a comma (Gateway API semantics), `set` adds a fresh header.
 */
export function appendPlan(out: string[], plan: HeaderPlan) {
  for (let i = 0; i < plan.set.length; i++) {
    const s = plan.set[i]!;
    out.push(s[0], s[1]);
  }
  for (let i = 0; i < plan.add.length; i++) {
    const [name, value] = plan.add[i]!;
    const l = name.toLowerCase();
    let found = false;
    for (let j = 0; j < out.length; j += 2) {
      if (out[j]!.toLowerCase() === l) {
        out[j + 1] = `${out[j + 1]},${value}`;
        found = true;
        break;
      }
    }
    if (!found) out.push(name, value);
  }
}
