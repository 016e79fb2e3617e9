// A route's IP allow and deny lists (its SecurityPolicy's authorization), on the real client
// address: the first rule whose ranges hold the client decides, else the default action. A
// denied request gets 403 before any other step (CORS, auth, plugins) sees it.
import { BlockList, isIPv4 } from "node:net";
import { parseCidr } from "../../config/cidr.ts";
import type { Authorization } from "../../config/schema.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

interface CompiledRule {
  allow: boolean;
  list: BlockList;
}

/** A range of the (validated) config into `list`. */
function addRange(list: BlockList, cidr: string): void {
  const c = parseCidr(cidr);
  if (typeof c === "string") throw new Error(`authorization: ${c}`);
  list.addSubnet(c.address, c.prefix, c.family === 4 ? "ipv4" : "ipv6");
}

export class IpAuthorizationStep implements RequestStep {
  readonly name = "ip-authorization";
  private readonly rules: CompiledRule[];
  private readonly allowByDefault: boolean;

  constructor(a: Authorization) {
    this.allowByDefault = a.defaultAction === "Allow";
    this.rules = a.rules.map(r => {
      const list = new BlockList();
      for (const cidr of r.cidrs) addRange(list, cidr);
      return { allow: r.action === "Allow", list };
    });
  }

  /** Whether `client` (an IPv4 or IPv6 address, IPv4-mapped ones as IPv4) may pass. */
  allows(client: string): boolean {
    const family = isIPv4(client) ? "ipv4" : "ipv6";
    for (const r of this.rules) if (r.list.check(client, family)) return r.allow;
    return this.allowByDefault;
  }

  run(ctx: RequestContext): StepResult {
    if (this.allows(ctx.client)) return null;
    return { status: 403, detail: "client address not allowed" };
  }
}
