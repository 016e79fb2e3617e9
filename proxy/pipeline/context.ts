// What the steps of one request's chain share: the routed request, what earlier steps changed
// (path, query, authority, request headers), what they asked to add to the response, and the
// per-request metadata plugins hand to each other. Created only for routes that have steps: a
// plain route never allocates one.
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { MatchedEntry, RequestView } from "../router/router.ts";
import type { Generation, PreparedListener, PreparedRoute } from "../runtime/generation.ts";
import type { Pairs } from "../plugins/abi.ts";
import { lowerIfNeeded } from "../filters/headers.ts";
import { RequestBody } from "./request-body.ts";
import type { CallInput } from "../plugins/call-input.ts";

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;

/** An answer produced by the gateway itself (a step ended the request). */
export interface LocalReply {
  status: number;
  /** plain-text error detail, rendered as "<status> <reason>: <detail>" */
  detail?: string;
  /** a body of the step's own (plugins); wins over detail */
  body?: Uint8Array;
  headers?: Pairs;
}

/** One change to the response the client will get: from CORS or a plugin. */
export type ResponseEdit = ["set" | "add" | "remove", string, string];

export interface ListenerInfo {
  socket: string;
  scheme: "http" | "https";
  port: number;
}

export class RequestContext {
  readonly gen: Generation;
  readonly pl: PreparedListener;
  readonly route: PreparedRoute;
  readonly entry: MatchedEntry<PreparedRoute>;
  readonly view: RequestView;
  readonly req: DownstreamRequest;
  readonly lctx: ListenerInfo;
  readonly client: string;
  /** as the client sent it */
  readonly authority: string;
  path: string;
  query: string;
  /** set by a plugin (SET_AUTHORITY): the Host the upstream gets */
  upstreamAuthority: string | null = null;
  /** the request headers as steps changed them (lowercase names); null: unchanged */
  headers: Pairs | null = null;
  /** the client's headers as pairs, made once for every plugin input that shows them */
  private original: Pairs | null = null;
  responseEdits: ResponseEdit[] | null = null;
  metadata: Pairs | null = null;
  /** bumped by every change a plugin input shows (request head, metadata) */
  version = 0;
  /** the last request-phase plugin input, reused while `version` is unchanged */
  callInput: { version: number; input: CallInput } | null = null;
  /** read ahead for needsBody plugins; the upstream then gets its replay */
  body: RequestBody | null = null;

  constructor(
    gen: Generation,
    pl: PreparedListener,
    entry: MatchedEntry<PreparedRoute>,
    view: RequestView,
    req: DownstreamRequest,
    lctx: ListenerInfo,
    client: string,
    authority: string,
  ) {
    this.gen = gen;
    this.pl = pl;
    this.route = entry.route;
    this.entry = entry;
    this.view = view;
    this.req = req;
    this.lctx = lctx;
    this.client = client;
    this.authority = authority;
    this.path = view.path;
    this.query = view.query;
  }

  /** The current request headers as pairs (the original ones until a step changes them). */
  requestHeaders(): Pairs {
    if (this.headers !== null) return this.headers;
    if (this.original !== null) return this.original;
    const raw = this.req.rawHeaders;
    const out: Pairs = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* : */) continue;
      out.push([lowerIfNeeded(name), raw[i + 1]!]);
    }
    this.original = out;
    return out;
  }

  /** Headers steps may change: materialized (a copy of the original pairs) on first change. */
  mutableHeaders(): Pairs {
    return (this.headers ??= [...this.requestHeaders()]);
  }

  /** The first value of request header `name` (lowercase) as steps left it. */
  header(name: string): string | undefined {
    for (const [n, v] of this.requestHeaders()) if (n === name) return v;
    return undefined;
  }

  /** Replaces every value of request header `name` (lowercase) with `value`; null removes it. */
  setHeader(name: string, value: string | null): void {
    const headers = this.mutableHeaders();
    for (let i = headers.length - 1; i >= 0; i--) if (headers[i]![0] === name) headers.splice(i, 1);
    if (value !== null) headers.push([name, value]);
    this.version++;
  }

  /** Edits the query string as parameters; one re-serialization however many changes `edit` makes. */
  editQuery(edit: (params: URLSearchParams) => void): void {
    const params = new URLSearchParams(this.query);
    edit(params);
    this.query = params.toString();
    this.version++;
  }

  editResponse(edit: ResponseEdit): void {
    (this.responseEdits ??= []).push(edit);
  }

  meta(): Pairs {
    return (this.metadata ??= []);
  }

  requestBody(): RequestBody {
    return (this.body ??= new RequestBody(this.req));
  }
}

/** Applies response edits to a flat [name, value, ...] header list (names compared lowercase). */
export function applyResponseEdits(headers: string[], edits: ResponseEdit[]): string[] {
  // each name lowercased once, not once per edit
  const lower: string[] = [];
  for (let i = 0; i < headers.length; i += 2) lower.push(lowerIfNeeded(headers[i]!));
  const out = headers;
  for (const [op, name, value] of edits) {
    const l = name.toLowerCase();
    if (op !== "add") {
      let w = 0;
      for (let r = 0; r < lower.length; r++) {
        if (lower[r] === l) continue;
        lower[w] = lower[r]!;
        out[2 * w] = out[2 * r]!;
        out[2 * w + 1] = out[2 * r + 1]!;
        w++;
      }
      lower.length = w;
      out.length = 2 * w;
    }
    if (op !== "remove") {
      out.push(name, value);
      lower.push(l);
    }
  }
  return out;
}
