// One bounded request to an endpoint of a cluster, its answer collected: what the ExternalAuth
// steps ask their auth service (HTTP/1.1 through undici, gRPC through the H2 pool; both speak
// undici's dispatch-handler interface). A timer cuts it; the body kept is capped, so a service
// that answers a flood costs no more than `maxBody` bytes.
import type { Dispatcher } from "undici";
import { HOP_BY_HOP } from "../filters/headers.ts";
import type { ClusterRuntime } from "./cluster.ts";

export interface CallAnswer {
  status: number;
  /** lowercase names, hop-by-hop ones left out */
  headers: Array<[string, string]>;
  body: Buffer;
  /** the body went on past maxBody */
  truncated: boolean;
  /** HTTP/2 trailers (gRPC's grpc-status), lowercase names */
  trailers: Array<[string, string]>;
}

export interface CallOptions {
  method: string;
  path: string;
  /** flat [name, value, ...], Host included */
  headers: string[];
  body: Buffer | null;
  timeoutMs: number;
  maxBody: number;
}

const pairs = (raw: ReadonlyArray<Buffer | string> | null | undefined): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1").toLowerCase();
    if (!HOP_BY_HOP.has(name)) out.push([name, raw[i + 1]!.toString("latin1")]);
  }
  return out;
};

export function callCluster(
  cluster: ClusterRuntime | undefined,
  o: CallOptions,
): Promise<CallAnswer> {
  const ep = cluster?.pick(null) ?? null;
  if (!cluster || ep === null) return Promise.reject(new Error("no healthy endpoint"));
  return new Promise<CallAnswer>((resolve, reject) => {
    let status = 0;
    let raw: Buffer[] = [];
    const chunks: Buffer[] = [];
    let size = 0;
    let abort: ((err?: Error) => void) | null = null;
    let settled = false;
    const done = (err: Error | null, trailers?: ReadonlyArray<Buffer | string> | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null) return reject(err);
      resolve({
        status,
        headers: pairs(raw),
        body: Buffer.concat(chunks),
        truncated: size > o.maxBody,
        trailers: pairs(trailers),
      });
    };
    const timer = setTimeout(() => {
      done(new Error(`no answer within ${o.timeoutMs} ms`));
      abort?.(new Error("timed out"));
    }, o.timeoutMs);
    const handler: Dispatcher.DispatchHandler = {
      onConnect: a => {
        abort = a;
      },
      onHeaders: (code, rawHeaders) => {
        if (code < 200) return true;
        status = code;
        raw = rawHeaders as Buffer[];
        return true;
      },
      onData: chunk => {
        if (size < o.maxBody) chunks.push(chunk.subarray(0, o.maxBody - size));
        size += chunk.length;
        return true;
      },
      onComplete: trailers => done(null, trailers as Buffer[] | string[] | null),
      onError: err => done(err),
    };
    try {
      ep.pool.dispatch(
        {
          path: o.path,
          method: o.method as Dispatcher.HttpMethod,
          headers: o.headers,
          body: o.body,
          servername: cluster.servername,
        } as Dispatcher.DispatchOptions,
        handler,
      );
    } catch (err) {
      done(err as Error);
    }
  });
}
