// Gateway addresses from a pool (RAUTA_ADDRESS_POOL: a list of IPs and/or IPv4 ranges
// "a.b.c.d-a.b.c.e"). A Gateway keeps the address it already reports while it is still in the
// pool, so addresses do not move when other Gateways come and go; new ones get the lowest free.
import type { Gateway } from "../compiler/index.ts";

function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}
function intToIp(value: number): string {
  return [24, 16, 8, 0].map(shift => Math.floor(value / 2 ** shift) % 256).join(".");
}

export function parsePool(spec: string): string[] {
  const result: string[] = [];
  for (const part of spec
    .split(",")
    .map(s => s.trim())
    .filter(Boolean)) {
    const [from, to] = part.split("-");
    if (!to) {
      result.push(from!);
      continue;
    }
    const [start, end] = [ipToInt(from!), ipToInt(to)];
    if (!(end >= start) || end - start > 65_535)
      throw new Error(`address pool range ${part} is invalid or larger than 65,536 addresses`);
    for (let i = start; i <= end; i++) result.push(intToIp(i));
  }
  return result;
}

export function assignAddresses(
  gateways: readonly Gateway[],
  pool: readonly string[],
): Record<string, string> {
  const key = (g: Gateway) => `${g.metadata.namespace ?? "default"}/${g.metadata.name}`;
  const inPool = new Set(pool);
  const assigned: Record<string, string> = {};
  // addresses Gateways request statically are never handed to another Gateway
  const used = new Set<string>(
    gateways.flatMap(g => (g.spec.addresses ?? []).flatMap(a => (a.value ? [a.value] : []))),
  );
  const wanting = [...gateways]
    .filter(g => !g.spec.addresses?.length)
    .sort((a, b) => (key(a) < key(b) ? -1 : 1));
  for (const gateway of wanting) {
    const current = (gateway as { status?: { addresses?: Array<{ value?: string }> } }).status
      ?.addresses?.[0]?.value;
    if (current && inPool.has(current) && !used.has(current)) {
      assigned[key(gateway)] = current;
      used.add(current);
    }
  }
  const free = pool.filter(ip => !used.has(ip));
  for (const gateway of wanting) {
    if (assigned[key(gateway)]) continue;
    const next = free.shift();
    if (!next) break;
    assigned[key(gateway)] = next;
  }
  return assigned;
}
