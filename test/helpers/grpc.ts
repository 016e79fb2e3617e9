// A gRPC backend and client on node:http2, for tests: gRPC's wire format (length-prefixed
// messages, grpc-status in trailers) without a protobuf library, since the proxy never looks
// inside a message. Methods of the service "test.Echo" exercise what a proxy can get wrong:
// trailers, trailers-only answers, streams in both directions, resets, silence, big bodies.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

export function frame(payload: Buffer | string): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits length-prefixed messages out of a byte stream as it arrives. */
export class Deframer {
  private buffer = Buffer.alloc(0);
  readonly messages: Buffer[] = [];
  push(chunk: Buffer): Buffer[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    while (this.buffer.length >= 5) {
      const n = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 5 + n) break;
      out.push(this.buffer.subarray(5, 5 + n));
      this.buffer = this.buffer.subarray(5 + n);
    }
    this.messages.push(...out);
    return out;
  }
}

export interface GrpcBackend {
  port: number;
  /** request headers of every call, in arrival order */
  calls: http2.IncomingHttpHeaders[];
  close(): Promise<void>;
}

const OK_TRAILERS = { "grpc-status": "0", "x-trailer": "kept" };

export async function startGrpcBackend(name = "backend"): Promise<GrpcBackend> {
  const calls: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", s => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    calls.push(headers);
    stream.on("error", () => {});
    const path = String(headers[":path"]);
    const head = { ":status": 200, "content-type": "application/grpc", "x-served-by": name };
    const frames = new Deframer();
    switch (path) {
      case "/test.Echo/Unary": {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const got = new Deframer().push(Buffer.concat(chunks));
          stream.respond(head, { waitForTrailers: true });
          stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
          stream.end(frame(`${name}:${got.map(m => m.toString()).join(",")}`));
        });
        return;
      }
      case "/test.Echo/NotFound":
        stream.resume();
        stream.respond(
          { ...head, "grpc-status": "5", "grpc-message": "no such thing" },
          { endStream: true },
        );
        return;
      case "/test.Echo/ServerStream": {
        stream.resume();
        stream.respond(head, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
        let i = 0;
        const tick = setInterval(() => {
          if (stream.destroyed) return clearInterval(tick);
          stream.write(frame(`${i}@${Date.now()}`));
          if (++i === 5) {
            clearInterval(tick);
            stream.end();
          }
        }, 100);
        return;
      }
      case "/test.Echo/Bidi": {
        stream.respond(head, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
        stream.on("data", (c: Buffer) => {
          for (const m of frames.push(c)) stream.write(frame(`echo:${m.toString()}`));
        });
        stream.on("end", () => stream.end());
        return;
      }
      case "/test.Echo/Big": {
        stream.resume();
        stream.respond(head, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
        const chunk = frame(Buffer.alloc(64 * 1024, 120));
        let left = 64; // 4 MiB
        const pump = () => {
          while (left > 0) {
            left--;
            if (!stream.write(chunk)) return void stream.once("drain", pump);
          }
          stream.end();
        };
        pump();
        return;
      }
      case "/test.Echo/Reset":
        stream.resume();
        stream.respond(head);
        stream.write(frame("partial"));
        // destroy(err) resets with INTERNAL_ERROR; close(code) on a stream the client has ended
        // sends NO_ERROR (Node 26)
        setTimeout(() => stream.destroy(new Error("backend gives up")), 50);
        return;
      case "/test.Echo/Silent":
        stream.resume();
        return;
      default:
        stream.respond({ ...head, "grpc-status": "12" }, { endStream: true });
    }
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    calls,
    close: () =>
      new Promise<void>(r => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface GrpcCall {
  status: number;
  headers: http2.IncomingHttpHeaders;
  /** the response's HEADERS frame ended the stream (trailers-only) */
  headersOnly: boolean;
  trailers: http2.IncomingHttpHeaders;
  messages: Buffer[];
  /** message arrival times (ms since the call started) */
  arrivals: number[];
  /** the stream ended by a reset instead of trailers */
  reset: boolean;
  elapsedMs: number;
}

/** One call on a client session; `send` feeds the request stream, which it then ends. */
export function grpcCall(
  client: http2.ClientHttp2Session,
  path: string,
  options: {
    authority?: string;
    headers?: http2.OutgoingHttpHeaders;
    send?: (stream: http2.ClientHttp2Stream, received: Deframer) => Promise<void> | void;
    /** pause reading for this long after each chunk (a slow client) */
    readDelayMs?: number;
  } = {},
): Promise<GrpcCall> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const stream = client.request({
      ":method": "POST",
      ":path": path,
      ":authority": options.authority ?? "grpc.example.com",
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    const received = new Deframer();
    const result: GrpcCall = {
      status: 0,
      headers: {},
      headersOnly: false,
      trailers: {},
      messages: received.messages,
      arrivals: [],
      reset: false,
      elapsedMs: 0,
    };
    stream.on("response", (headers, flags) => {
      result.status = Number(headers[":status"]);
      result.headers = headers;
      result.headersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.on("trailers", t => (result.trailers = t));
    stream.on("data", (c: Buffer) => {
      for (const _ of received.push(c)) result.arrivals.push(Date.now() - started);
      if (options.readDelayMs) {
        stream.pause();
        setTimeout(() => stream.resume(), options.readDelayMs);
      }
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      result.elapsedMs = Date.now() - started;
      result.reset = stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
      resolve(result);
    });
    Promise.resolve(options.send ? options.send(stream, received) : stream.end(frame("hi"))).then(
      () => {
        if (!stream.writableEnded) stream.end();
      },
      reject,
    );
  });
}
