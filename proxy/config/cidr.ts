// An address range as users write it ("10.0.0.0/8", "2001:db8::/32", or a bare address for one
// host), checked once for the compiler's messages and the config's validation alike. Pure (no
// node:net): the compiler is bundled into the Pepr module with pure imports only.

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const HEXTET = /^[0-9A-Fa-f]{1,4}$/;

function isIPv6(text: string): boolean {
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  // an IPv4 address may end it (::ffff:192.0.2.1), counting as two groups
  let count = all.length;
  const last = all.at(-1);
  if (last !== undefined && last.includes(".")) {
    if (!IPV4.test(last)) return false;
    all.pop();
    count++;
  }
  if (!all.every(g => HEXTET.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** 4, 6, or 0 when `text` is neither an IPv4 nor an IPv6 address (as node:net's isIP). */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (IPV4.test(text)) return 4;
  return isIPv6(text) ? 6 : 0;
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** The range, or why it is not one. A bare address is a /32 or /128. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = ipFamily(address);
  if (family === 0)
    return `${JSON.stringify(text)}: ${JSON.stringify(address)} is not an IP address`;
  const max = family === 4 ? 32 : 128;
  if (slash === -1) return { address, prefix: max, family };
  const p = text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(p) ? Number(p) : NaN;
  if (!(prefix >= 0 && prefix <= max))
    return `${JSON.stringify(text)}: the prefix length must be 0 to ${max}`;
  return { address, prefix, family };
}

/** The canonical form the config carries: always with its prefix length. */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}
