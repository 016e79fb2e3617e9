// A WASM plugin in the chain (plugins-sdk/ABI.md): on_request gets the request head and its
// decision is applied here; on_response gets the upstream head before it goes downstream. A
// plugin with needsBody also gets the body, at most limits.maxBodyBytes of it (the input says
// when it was cut): the request body is read ahead (request-body.ts) and replayed upstream, the
// response body is held back until the plugin decided (handler.ts). A failure — or a plugin
// that could not be loaded — is answered by its failurePolicy: FailClosed ends the request with
// 500, FailOpen skips the plugin.
import type { Plugin } from "../../config/schema.ts";
import { normalizePath } from "../../router/normalize-path.ts";
import { CallInput } from "../../plugins/call-input.ts";
import type { Decision, Op, Pairs, Phase, PluginInput } from "../../plugins/abi.ts";
import type { LoadedPlugin, Outcome } from "../../plugins/loaded-plugin.ts";
import type { LocalReply, RequestContext } from "../context.ts";
import { cutBody } from "../step.ts";
import type { RequestStep, BodyView, ResponseStep, StepResult } from "../step.ts";
import { BodyReadError } from "../request-body.ts";

/**
 * How long a needsBody plugin waits for the client's body before the request gets 408, when the
 * route sets no request timeout (HTTPRoute timeouts.request) of its own.
 */
export const BODY_READ_TIMEOUT_MS = 30_000;

const NO_PAIRS: Pairs = [];

function input(
  ctx: RequestContext,
  phase: Phase,
  status: number,
  responseHeaders: Pairs,
  body?: BodyView,
): PluginInput {
  const i: PluginInput = {
    phase,
    method: ctx.req.method ?? "GET",
    scheme: ctx.lctx.scheme,
    authority: ctx.authority,
    path: ctx.path,
    query: ctx.query,
    client: ctx.client,
    route: ctx.route.id,
    status,
    requestHeaders: ctx.requestHeaders(),
    responseHeaders,
    metadata: ctx.metadata ?? NO_PAIRS,
  };
  if (body !== undefined) {
    i.body = body.bytes;
    if (body.truncated) i.bodyTruncated = true;
  }
  return i;
}

function failure(
  plugin: LoadedPlugin | { id: string; failurePolicy: Plugin["failurePolicy"] },
  why: string,
): StepResult {
  if (plugin.failurePolicy === "FailOpen") return null;
  return { status: 500, detail: `plugin ${plugin.id} failed (FailClosed): ${why}` };
}

function applyOps(ctx: RequestContext, ops: Op[]): LocalReply | null {
  for (const op of ops) {
    if (
      op.op !== "setResponseHeader" &&
      op.op !== "addResponseHeader" &&
      op.op !== "removeResponseHeader"
    )
      ctx.version++;
    switch (op.op) {
      case "setRequestHeader": {
        const h = ctx.mutableHeaders();
        ctx.headers = h.filter(([n]) => n !== op.name);
        ctx.headers.push([op.name, op.value]);
        break;
      }
      case "addRequestHeader":
        ctx.mutableHeaders().push([op.name, op.value]);
        break;
      case "removeRequestHeader":
        ctx.headers = ctx.mutableHeaders().filter(([n]) => n !== op.name);
        break;
      case "setPath": {
        const n = normalizePath(op.path, ctx.pl.paths);
        if (n.kind === "reject")
          return { status: 500, detail: `a plugin set an invalid path: ${n.detail}` };
        ctx.path = n.path;
        break;
      }
      case "setQuery":
        ctx.query = op.query;
        break;
      case "setAuthority":
        ctx.upstreamAuthority = op.authority;
        break;
      case "setResponseHeader":
        ctx.editResponse(["set", op.name, op.value]);
        break;
      case "addResponseHeader":
        ctx.editResponse(["add", op.name, op.value]);
        break;
      case "removeResponseHeader":
        ctx.editResponse(["remove", op.name, ""]);
        break;
      case "setMetadata": {
        const m = ctx.meta();
        const i = m.findIndex(([k]) => k === op.key);
        if (i >= 0) m[i] = [op.key, op.value];
        else m.push([op.key, op.value]);
        break;
      }
    }
  }
  return null;
}

function decide(ctx: RequestContext, plugin: LoadedPlugin, outcome: Outcome): StepResult {
  if (!outcome.ok) return failure(plugin, `${outcome.reason}: ${outcome.message}`);
  const d: Decision = outcome.decision;
  if (d.action === "continue") return null;
  if (d.action === "reject") return { status: d.status, headers: d.headers, body: d.body };
  return applyOps(ctx, d.ops);
}

export class PluginRequestStep implements RequestStep {
  readonly name: string;
  readonly plugin: LoadedPlugin;

  constructor(plugin: LoadedPlugin) {
    this.plugin = plugin;
    this.name = `plugin ${plugin.id}`;
  }

  run(ctx: RequestContext): StepResult | Promise<StepResult> {
    if (this.plugin.spec.needsBody) return this.runWithBody(ctx);
    // plugins in a row see the same head unless one of them changed it: one CallInput (and at
    // most one encoding of it) for all of them
    let cached = ctx.callInput;
    if (cached === null) {
      cached = { version: ctx.version, input: CallInput.of(input(ctx, "request", 0, NO_PAIRS)) };
      ctx.callInput = cached;
    } else if (cached.version !== ctx.version) {
      // what a plugin can change: the path, the query, the headers and the metadata (the
      // authority it sets is the upstream's; the input keeps the client's)
      cached.input.refresh(ctx.path, ctx.query, ctx.requestHeaders(), ctx.metadata ?? NO_PAIRS);
      cached.version = ctx.version;
    }
    const outcome = this.plugin.run("request", cached.input);
    return outcome instanceof Promise
      ? outcome.then(o => decide(ctx, this.plugin, o))
      : decide(ctx, this.plugin, outcome);
  }

  private async runWithBody(ctx: RequestContext): Promise<StepResult> {
    let body: BodyView;
    try {
      body = await ctx
        .requestBody()
        .upTo(
          this.plugin.spec.limits.maxBodyBytes,
          ctx.route.requestTimeoutMs > 0 ? ctx.route.requestTimeoutMs : BODY_READ_TIMEOUT_MS,
        );
    } catch (err) {
      if (err instanceof BodyReadError) return { status: err.status, detail: err.message };
      throw err;
    }
    const call = CallInput.of(input(ctx, "request", 0, NO_PAIRS, body));
    return decide(ctx, this.plugin, await this.plugin.run("request", call));
  }
}

export class PluginResponseStep implements ResponseStep {
  readonly name: string;
  readonly plugin: LoadedPlugin;

  constructor(plugin: LoadedPlugin) {
    this.plugin = plugin;
    this.name = `plugin ${plugin.id}`;
  }

  /** the most of the response body this step wants (0: none) */
  get bodyBytes(): number {
    return this.plugin.spec.needsBody ? this.plugin.spec.limits.maxBodyBytes : 0;
  }

  async run(
    ctx: RequestContext,
    status: number,
    headers: string[],
    body?: BodyView,
  ): Promise<StepResult> {
    const pairs: Pairs = [];
    for (let i = 0; i < headers.length; i += 2)
      pairs.push([headers[i]!.toLowerCase(), headers[i + 1]!]);
    const own =
      body !== undefined && this.plugin.spec.needsBody ? cutBody(body, this.bodyBytes) : undefined;
    const outcome = await this.plugin.run(
      "response",
      CallInput.of(input(ctx, "response", status, pairs, own)),
    );
    return decide(ctx, this.plugin, outcome);
  }
}

/** A plugin the config names but this proxy could not load (and no earlier version serves). */
export class UnavailablePluginStep implements RequestStep {
  readonly name: string;
  private readonly id: string;
  private readonly failurePolicy: Plugin["failurePolicy"];
  private readonly why: string;

  constructor(spec: Pick<Plugin, "id" | "failurePolicy">, why: string) {
    this.id = spec.id;
    this.failurePolicy = spec.failurePolicy;
    this.name = `plugin ${spec.id} (unavailable)`;
    this.why = why;
  }

  run(): StepResult {
    return failure({ id: this.id, failurePolicy: this.failurePolicy }, `not loaded: ${this.why}`);
  }
}
