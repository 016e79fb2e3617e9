// What an ExternalAuth transport (HTTP or gRPC, pipeline/steps/external-auth*.ts) hands back to
// the step: the service let the request through (and how it changes it) or answered for it.
import type { Filter } from "../config/schema.ts";
import type { RequestContext } from "./context.ts";

export type ExternalAuthFilter = Extract<Filter, { type: "ExternalAuth" }>;

export type AuthVerdict =
  | { allowed: true; apply(ctx: RequestContext): void }
  | { allowed: false; status: number; headers: Array<[string, string]>; body: Buffer };

/** How an auth service is asked: rejects when it gave no usable answer (the step fails closed). */
export interface AuthTransport {
  ask(ctx: RequestContext, body: Buffer | null): Promise<AuthVerdict>;
}

/** the most of an auth service's answer body passed on to the client */
export const MAX_DENIAL_BODY = 64 * 1024;

/** The path and query the auth service is asked about. */
export const requestUri = (ctx: RequestContext) =>
  ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path;
