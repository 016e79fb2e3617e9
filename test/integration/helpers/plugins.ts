// Plugin fixtures for the cluster suites: small modules built from WAT (plugins-sdk/ABI.md: a
// decision in a data segment handed to the host with rauta:host output_set), an HS256 token
// signer, an HTTP server a url source downloads from, and a load loop that records what every
// request got.
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import wabtInit from "wabt";
import { encodeDecision } from "../../../proxy/plugins/abi.ts";
import type { Decision } from "../../../proxy/plugins/abi.ts";
import type { HttpResult } from "./workloads.ts";

const wabt = await wabtInit();

/** A module from WAT: `rauta:host output_set` imported as $out, one page of exported memory. */
export function wasmModule(body: string): Uint8Array {
  const source = `(module
    (import "rauta:host" "output_set" (func $out (param i32 i32)))
    (memory (export "memory") 1)
    ${body})`;
  const module = wabt.parseWat("plugin.wat", source);
  try {
    module.validate();
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** A module whose `exportName` answers `decision` on every call. */
export function answering(decision: Decision, exportName = "on_request"): Uint8Array {
  const bytes = encodeDecision(decision);
  const data = [...bytes].map(b => `\\${b.toString(16).padStart(2, "0")}`).join("");
  return wasmModule(`(data (i32.const 16) "${data}")
    (func (export "${exportName}") (result i32)
      (call $out (i32.const 16) (i32.const ${bytes.length})) (i32.const 0))`);
}

/** A module that sets one request header (MODIFY SET_REQUEST_HEADER). */
export const settingHeader = (name: string, value: string): Uint8Array =>
  answering({ action: "modify", ops: [{ op: "setRequestHeader", name, value }] });

/** A module that answers every request itself (REJECT). */
export const rejecting = (status: number, body: string, headers: Array<[string, string]> = []) =>
  answering({ action: "reject", status, headers, body: new TextEncoder().encode(body) });

export const sha256 = (bytes: Uint8Array): string =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

export const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

/** A JWS compact token signed with HS256 (the secret's UTF-8 bytes). */
export function hs256Token(secret: string, claims: Record<string, unknown>): string {
  const signingInput = `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${base64url(createHmac("sha256", secret).update(signingInput).digest())}`;
}

export interface ModuleServer {
  url: string;
  /** GETs of the module so far */
  downloads(): number;
  close(): Promise<void>;
}

/** Serves `bytes` at /<name> on `address` (a free port), for a url source. */
export async function serveModule(
  address: string,
  name: string,
  bytes: Uint8Array,
): Promise<ModuleServer> {
  let downloads = 0;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === `/${name}`) {
      downloads++;
      res.writeHead(200, {
        "content-type": "application/wasm",
        "content-length": String(bytes.length),
      });
      res.end(bytes);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>(resolve => server.listen(0, address, () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/${name}`,
    downloads: () => downloads,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Sample {
  /** ms (Date.now) the request was sent */
  sent: number;
  /** ms it took */
  ms: number;
  status: number;
  /** what `read` made of the response */
  value: string | undefined;
  error?: string;
}

export interface LoadLoop {
  samples: Sample[];
  /** stops sending and resolves once every request in flight has finished */
  stop(): Promise<Sample[]>;
}

/**
 * Sends `rate` requests per second (open loop: on schedule whether or not earlier ones have
 * answered; when the timer runs late it catches up by at most 5 and skips what is further behind).
 */
export function loadLoop(
  send: () => Promise<HttpResult>,
  rate: number,
  read: (response: HttpResult) => string | undefined,
): LoadLoop {
  const samples: Sample[] = [];
  const inFlight = new Set<Promise<void>>();
  const start = Date.now();
  let fired = 0;
  const fire = () => {
    const sent = Date.now();
    const p = send().then(r => {
      samples.push({
        sent,
        ms: Date.now() - sent,
        status: r.status,
        value: r.status === 0 ? undefined : read(r),
        ...(r.error ? { error: r.error } : {}),
      });
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - start) * rate) / 1000);
    for (let i = 0; fired < due && i < 5; i++, fired++) fire();
    fired = Math.max(fired, due - 5);
  }, 5);
  return {
    samples,
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...inFlight]);
      return samples.sort((a, b) => a.sent - b.sent);
    },
  };
}

/**
 * How long after `since` a change took to show, among the samples sent in [since, until):
 * `first` the first response with `value`, `settled` the first from which on every response had
 * it (ms after since; undefined when it never did).
 */
export function propagation(
  samples: readonly Sample[],
  since: number,
  until: number,
  value: string,
): { first?: number; settled?: number } {
  const window = samples.filter(s => s.sent >= since && s.sent < until);
  const first = window.find(s => s.value === value);
  let lastOther = -1;
  window.forEach((s, i) => {
    if (s.value !== value) lastOther = i;
  });
  const settled = window[lastOther + 1];
  return {
    ...(first ? { first: first.sent - since } : {}),
    ...(settled ? { settled: settled.sent - since } : {}),
  };
}

/** A header the echo-basic backend saw (it reports them Go-canonical: X-Live). */
export function echoedHeader(body: string, name: string): string | undefined {
  try {
    const headers = (JSON.parse(body) as { headers?: Record<string, string[]> }).headers ?? {};
    const key = Object.keys(headers).find(k => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : headers[key]?.join(",");
  } catch {
    return undefined;
  }
}
