// HTTP/2 defences that Node's server does not have on its own (CVE-2023-44487 "rapid reset" and
// its relatives): a client that keeps opening streams and cancelling them makes the server do the
// work of a request for nothing. Per session we count streams the client reset before we
// answered; past `maxResetsPerWindow` within `windowMs` the session gets GOAWAY
// ENHANCE_YOUR_CALM and is closed. A request on HTTP/2 is handed to the handler on the next
// turn of the event loop, so a stream reset in the same read costs no routing and no upstream
// request. Settings follow Envoy's edge recommendations (100 concurrent streams, 64 KiB stream
// window, 1 MiB connection window).
import http2 from "node:http2";
import type { Metrics } from "../observability/metrics.ts";

export interface H2GuardOptions {
  maxConcurrentStreams: number;
  maxResetsPerWindow: number;
  windowMs: number;
  streamWindowBytes: number;
  connectionWindowBytes: number;
}

export const DEFAULT_H2_GUARD: H2GuardOptions = {
  maxConcurrentStreams: 100,
  maxResetsPerWindow: 200,
  windowMs: 1000,
  streamWindowBytes: 65_535,
  connectionWindowBytes: 1024 * 1024,
};

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

const refused = new WeakSet<http2.Http2Session>();

/** A session told to go away for abuse: its requests are not served. */
export function isRefused(session: http2.Http2Session | undefined): boolean {
  return session !== undefined && refused.has(session);
}

export function h2Settings(o: H2GuardOptions, maxHeaderListSize: number): http2.Settings {
  return {
    maxHeaderListSize,
    maxConcurrentStreams: o.maxConcurrentStreams,
    initialWindowSize: o.streamWindowBytes,
  };
}

export function guardSession(
  session: http2.Http2Session,
  o: H2GuardOptions,
  metrics: Metrics,
): void {
  let windowStart = Date.now();
  let resets = 0;
  session.once("connect", () => {
    try {
      session.setLocalWindowSize(o.connectionWindowBytes);
    } catch {
      // the session closed already
    }
  });
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.once("close", () => {
      // the client cancelled before our answer went out
      if (stream.headersSent || stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) return;
      const now = Date.now();
      if (now - windowStart > o.windowMs) {
        windowStart = now;
        resets = 0;
      }
      if (++resets <= o.maxResetsPerWindow || session.destroyed || refused.has(session)) return;
      metrics.h2Refused.labels("rapid_reset").inc();
      // GOAWAY first; requests of this session still queued are dropped (isRefused), and the
      // connection goes once nghttp2 has flushed the frame
      refused.add(session);
      session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
      setImmediate(() => session.destroy());
    });
  });
}
