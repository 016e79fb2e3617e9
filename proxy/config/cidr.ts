// An address range as users write it ("10.0.0.0/8", "2001:db8::/32", or a bare address for one
// host), checked once for the compiler's messages and the config's validation alike.
import { isIP } from "node:net";

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** The range, or why it is not one. A bare address is a /32 or /128. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0)
    return `${JSON.stringify(text)}: ${JSON.stringify(address)} is not an IP address`;
  const max = family === 4 ? 32 : 128;
  if (slash === -1) return { address, prefix: max, family: family as 4 | 6 };
  const p = text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(p) ? Number(p) : NaN;
  if (!(prefix >= 0 && prefix <= max))
    return `${JSON.stringify(text)}: the prefix length must be 0 to ${max}`;
  return { address, prefix, family: family as 4 | 6 };
}

/** The canonical form the config carries: always with its prefix length. */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}
