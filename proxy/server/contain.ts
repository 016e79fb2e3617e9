// Containment: an exception raised while handling one request or connection ends that request
// (500, or a cut response once headers are out) or that connection, is logged with what was
// being handled and counted in rauta_contained_errors_total{phase}, and never reaches the
// process, where it would take down every other request the worker is serving.
import type { Duplex } from "node:stream";
import type { Metrics } from "../observability/metrics.ts";
import type { Logger } from "../observability/logger.ts";

export interface ContainmentCore {
  metrics: Metrics;
  logger: Logger;
}

export type Phase = "request" | "upgrade" | "upstream" | "timer" | "tunnel";

interface ClosableResponse {
  headersSent: boolean;
  destroyed?: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: string): unknown;
  destroy(): unknown;
}

export function reportContained(
  core: ContainmentCore,
  phase: Phase,
  err: unknown,
  context: Record<string, unknown>,
): void {
  core.metrics.contained.labels(phase).inc();
  const e = err instanceof Error ? err : new Error(String(err));
  core.logger.error("request handling failed; the request was ended, the worker keeps serving", {
    phase,
    error: e.message,
    stack: e.stack,
    ...context,
  });
}

/** Ends a downstream response after an internal failure: 500 if nothing was sent, else cut. */
export function endWithInternalError(res: ClosableResponse): void {
  try {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = "500 Internal Server Error: the gateway failed to handle this request\n";
    res.writeHead(500, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      connection: "close",
    });
    res.end(body);
  } catch {
    res.destroy();
  }
}

export function endSocketWithInternalError(socket: Duplex): void {
  try {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = "500 Internal Server Error: the gateway failed to handle this request\n";
    socket.end(
      `HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  } catch {
    socket.destroy();
  }
}
