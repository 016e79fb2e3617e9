// Hostname semantics of the Gateway API: "*.example.com" matches any name with at least one more
// label in front of "example.com" (and not "example.com" itself); an absent hostname matches all.
import { compareStrings } from "./order.ts";

export function isWildcard(hostname: string): boolean {
  return hostname.startsWith("*.");
}

// Does the concrete or wildcard name `name` fall entirely within `pattern`?
export function hostnameWithin(name: string, pattern: string): boolean {
  if (pattern === "*") return true;
  if (!isWildcard(pattern)) return name === pattern;
  const suffix = pattern.slice(1); // ".example.com"
  if (isWildcard(name)) return name.slice(1).endsWith(suffix) && name.length >= pattern.length;
  return name.endsWith(suffix) && name.length > suffix.length;
}

// The names a route serves through a listener: the spec's intersection of the two.
// Returns [] when they do not intersect. "*" stands for "any host".
export function intersectHostnames(
  listenerHostname: string | undefined,
  routeHostnames: string[],
): string[] {
  if (routeHostnames.length === 0) return [listenerHostname ?? "*"];
  if (!listenerHostname) return [...routeHostnames];
  const result = new Set<string>();
  for (const routeHostname of routeHostnames) {
    if (hostnameWithin(routeHostname, listenerHostname)) result.add(routeHostname);
    else if (hostnameWithin(listenerHostname, routeHostname)) result.add(listenerHostname);
  }
  return [...result];
}

// Specificity for choosing among hostnames that match a request: exact names first, then
// wildcards with more labels, then the catch-all. Larger is more specific.
export function hostnameSpecificity(hostname: string | undefined): [number, number, number] {
  if (!hostname || hostname === "*") return [0, 0, 0];
  const labels = hostname.split(".").length;
  return isWildcard(hostname) ? [1, labels, hostname.length] : [2, labels, hostname.length];
}

export function compareSpecificity(a: string | undefined, b: string | undefined): number {
  const [x, y] = [hostnameSpecificity(a), hostnameSpecificity(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return y[i]! - x[i]!;
  return compareStrings(a ?? "", b ?? "");
}
