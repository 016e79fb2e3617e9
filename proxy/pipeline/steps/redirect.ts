// The Gateway API RequestRedirect filter: ends the request with a redirect to the Location it
// computes from the request (scheme, host, port, path with the matched prefix replaced).
import { hostOf } from "../../router/router.ts";
import type { PathModifier } from "../../config/schema.ts";
import { rewritePath } from "../rewrite.ts";
import type { RequestContext } from "../context.ts";
import type { RequestStep, StepResult } from "../step.ts";

export interface RedirectPlan {
  scheme: "http" | "https" | undefined;
  hostname: string | undefined;
  port: number | undefined;
  path: PathModifier | undefined;
  statusCode: number;
}

export class RedirectStep implements RequestStep {
  readonly name = "redirect";
  readonly plan: RedirectPlan;

  constructor(plan: RedirectPlan) {
    this.plan = plan;
  }

  run(ctx: RequestContext): StepResult {
    return {
      status: this.plan.statusCode,
      headers: [["location", redirectLocation(this.plan, ctx)]],
      body: EMPTY,
    };
  }
}

export function redirectLocation(rd: RedirectPlan, ctx: RequestContext): string {
  const lctx = ctx.lctx;
  const scheme = rd.scheme ?? lctx.scheme;
  const host = rd.hostname ?? hostOf(ctx.authority);
  let port: number;
  if (rd.port !== undefined) port = rd.port;
  else if (rd.scheme !== undefined) port = rd.scheme === "https" ? 443 : 80;
  else port = lctx.port;
  const defaultPort = scheme === "https" ? 443 : 80;
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const path = rd.path ? rewritePath(ctx.path, rd.path, ctx.entry.prefixLength) : ctx.path;
  const query = ctx.query ? `?${ctx.query}` : "";
  return `${scheme}://${hostPart}${port === defaultPort ? "" : `:${port}`}${path}${query}`;
}

const EMPTY = new Uint8Array(0);
