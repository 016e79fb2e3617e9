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

/** A request or response body (or its first part) as a needsBody plugin sees it. */
export interface BodyView {
  bytes: Uint8Array;
  /** more followed than `bytes` holds */
  truncated: boolean;
}

/** The first `max` bytes of a body that arrived as chunks, joined once (`joined`, for the caller to keep). */
export function bodyView(
  chunks: readonly Buffer[],
  max: number,
): { joined: Buffer; view: BodyView } {
  const joined = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return { joined, view: cutBody({ bytes: joined, truncated: false }, max) };
}

/** At most `max` bytes of a body, marked truncated when more followed. */
export function cutBody(body: BodyView, max: number): BodyView {
  return body.bytes.length <= max ? body : { bytes: body.bytes.subarray(0, max), truncated: true };
}

/** A step that runs on the upstream response head before it is sent downstream (plugins). */
export interface ResponseStep {
  readonly name: string;
  /** how much of the response body the step needs to see first (0: none, the head is enough) */
  readonly bodyBytes: number;
  run(ctx: RequestContext, status: number, headers: string[], body?: BodyView): Promise<StepResult>;
}
