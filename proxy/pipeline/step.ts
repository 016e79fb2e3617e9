// A step of a request chain (chain.ts): it may change the request, ask for response changes, or
// end the request with a local reply. A step that needs no I/O answers synchronously; only steps
// that call a plugin return a promise, so chains without plugins never leave the current tick.
import type { LocalReply, RequestContext } from "./context.ts";

export type StepResult = LocalReply | null;

export interface RequestStep {
  /** for logs and errors: "cors", "plugin default/jwt", ... */
  readonly name: string;
  run(ctx: RequestContext): StepResult | Promise<StepResult>;
}

/** A step that runs on the upstream response head before it is sent downstream (plugins). */
export interface ResponseStep {
  readonly name: string;
  run(ctx: RequestContext, status: number, headers: string[]): Promise<StepResult>;
}
