// The request body, read ahead for plugins that set needsBody: up to the largest maxBodyBytes a
// step asked for (one byte more, to know whether it was truncated), kept as the chunks that
// arrived, then replayed to the upstream followed by whatever the client still sends. A plugin
// sees at most its maxBodyBytes; the upstream always gets the whole body, byte for byte.
import { Readable } from "node:stream";
import type { Http2ServerRequest } from "node:http2";
import type { DownstreamRequest } from "./context.ts";
import { bodyView } from "./step.ts";
import type { BodyView } from "./step.ts";

export class BodyReadError extends Error {
  /** 408: the client was too slow; 400: it went away or the stream failed */
  readonly status: 400 | 408;
  constructor(status: 400 | 408, message: string) {
    super(message);
    this.status = status;
  }
}

/** Whether the request has a body at all (the same test the upstream exchange makes). */
export function hasRequestBody(req: DownstreamRequest): boolean {
  const stream = (req as Http2ServerRequest).stream as { endAfterHeaders?: boolean } | undefined;
  if (stream !== undefined && typeof stream.endAfterHeaders === "boolean")
    return !stream.endAfterHeaders;
  const cl = req.headers["content-length"];
  return (cl !== undefined && cl !== "0") || req.headers["transfer-encoding"] !== undefined;
}

export class RequestBody {
  private readonly req: DownstreamRequest;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private complete: boolean;
  private failure: BodyReadError | null = null;
  private reading: Promise<void> | null = null;
  private replayed = false;

  constructor(req: DownstreamRequest) {
    this.req = req;
    this.complete = !hasRequestBody(req);
  }

  /** Reads until more than max bytes arrived or the body ended; rejects with a BodyReadError. */
  async upTo(max: number, timeoutMs: number): Promise<BodyView> {
    while (!this.complete && this.size <= max) {
      if (this.failure !== null) throw this.failure;
      await (this.reading ??= this.readMore(max, timeoutMs).finally(() => (this.reading = null)));
    }
    if (this.failure !== null) throw this.failure;
    const { joined, view } = bodyView(this.chunks, max);
    this.chunks.splice(0, this.chunks.length, joined);
    return view;
  }

  private readMore(max: number, timeoutMs: number): Promise<void> {
    const req = this.req;
    return new Promise<void>(resolve => {
      const done = (failure: BodyReadError | null) => {
        clearTimeout(timer);
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("error", onError);
        req.off("aborted", onAborted);
        req.off("close", onClose);
        if (!this.complete) req.pause();
        if (failure !== null) this.failure = failure;
        resolve();
      };
      const onData = (chunk: Buffer) => {
        this.chunks.push(chunk);
        this.size += chunk.length;
        if (this.size > max) done(null);
      };
      const onEnd = () => {
        this.complete = true;
        done(null);
      };
      const onError = (err: Error) =>
        done(new BodyReadError(400, `the request body could not be read: ${err.message}`));
      const onAborted = () =>
        done(new BodyReadError(400, "the client went away before sending its body"));
      const onClose = () => {
        if (!this.complete)
          done(new BodyReadError(400, "the client went away before sending its body"));
      };
      const timer = setTimeout(
        () =>
          done(new BodyReadError(408, `the request body did not arrive within ${timeoutMs} ms`)),
        timeoutMs,
      );
      req.on("data", onData);
      req.once("end", onEnd);
      req.once("error", onError);
      req.once("aborted", onAborted);
      req.once("close", onClose);
      req.resume();
    });
  }

  /** What the upstream gets: the chunks read so far, then the rest of the client's body. */
  replay(): Readable {
    if (this.replayed) throw new Error("a request body is replayed once");
    this.replayed = true;
    const chunks = this.chunks.splice(0);
    const rest = this.complete ? null : this.req;
    return Readable.from(
      (async function* () {
        yield* chunks;
        if (rest !== null) for await (const c of rest) yield c as Buffer;
      })(),
      { objectMode: false },
    );
  }
}
