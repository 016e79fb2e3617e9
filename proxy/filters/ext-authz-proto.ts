// The two messages of Envoy's external authorization gRPC API (envoy.service.auth.v3, what
// GEP-1494's protocol GRPC means, spoken by OPA-Envoy, Authorino and Envoy Gateway's ext auth
// services): CheckRequest written and CheckResponse read by hand, field numbers as in the
// go-control-plane types (hack/ext-authz builds a server on those). Only the fields a gateway
// fills or acts on; unknown fields are skipped, as protobuf requires.
import { isUtf8 } from "node:buffer";

/** What the auth service is told about a request (AttributeContext). */
export interface CheckRequestInput {
  source: { address: string; port: number };
  destination: { address: string; port: number };
  timeMs: number;
  http: {
    id: string;
    method: string;
    /** lowercase names; several values of one name joined by "," */
    headers: ReadonlyArray<readonly [string, string]>;
    /** path and query, as :path */
    path: string;
    host: string;
    scheme: string;
    protocol: string;
    /** the forwarded body (forwardBody), if any */
    body?: Uint8Array;
  };
}

export interface HeaderOption {
  name: string;
  value: string;
  /** what HeaderValueOption says to do: add next to, set over, add if absent, set if present */
  action: "add" | "set" | "add-if-absent" | "set-if-present";
}

export type CheckVerdict =
  | {
      allowed: true;
      headers: HeaderOption[];
      headersToRemove: string[];
      responseHeadersToAdd: HeaderOption[];
      queryToSet: Array<[string, string]>;
      queryToRemove: string[];
    }
  | {
      allowed: false;
      /** google.rpc.Status code (non-zero) */
      code: number;
      message: string;
      /** the HTTP status the service asked for (0: none, the gateway's default) */
      httpStatus: number;
      headers: HeaderOption[];
      body: string;
    };

// ---- writing ----

class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array) {
    this.parts.push(b);
    this.size += b.length;
  }

  private varint(n: number) {
    const out: number[] = [];
    let v = BigInt.asUintN(64, BigInt(Math.trunc(n)));
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }

  uint(field: number, n: number): this {
    if (n === 0) return this;
    this.tag(field, 0);
    this.varint(n);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return s === "" ? this : this.bytes(field, Buffer.from(s, "utf8"));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts, this.size);
  }
}

const peer = (p: { address: string; port: number }) =>
  // Peer.address = Address { socket_address = SocketAddress { address = 2, port_value = 3 } }
  new Writer().message(
    1,
    new Writer().message(1, new Writer().string(2, p.address).uint(3, p.port)),
  );

export function encodeCheckRequest(input: CheckRequestInput): Uint8Array {
  const h = input.http;
  const http = new Writer()
    .string(1, h.id)
    .string(2, h.method)
    // map<string, string> headers = 3: one entry message {key = 1, value = 2} each
    .string(4, h.path)
    .string(5, h.host)
    .string(6, h.scheme)
    .string(10, h.protocol);
  for (const [name, value] of h.headers)
    http.message(3, new Writer().string(1, name).string(2, value));
  if (h.body !== undefined) {
    http.uint(9, h.body.length);
    // body (11) as text when it is text, raw_body (12) otherwise, as Envoy does
    if (isUtf8(h.body)) http.string(11, Buffer.from(h.body).toString("utf8"));
    else http.bytes(12, h.body);
  }
  const seconds = Math.floor(input.timeMs / 1000);
  const time = new Writer().uint(1, seconds).uint(2, (input.timeMs - seconds * 1000) * 1_000_000);
  const request = new Writer().message(1, time).message(2, http);
  const attributes = new Writer()
    .message(1, peer(input.source))
    .message(2, peer(input.destination))
    .message(4, request);
  return new Writer().message(1, attributes).finish();
}

// ---- reading ----

/** A protobuf message's fields: number → values (varints as numbers, length-delimited as bytes). */
type Fields = Map<number, Array<number | Uint8Array>>;

export class ProtoError extends Error {}

function readFields(b: Uint8Array): Fields {
  const fields: Fields = new Map();
  let i = 0;
  const varint = (): number => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= b.length) throw new ProtoError("truncated varint");
      const byte = b[i++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw new ProtoError("varint too long");
    }
    return Number(BigInt.asIntN(64, result));
  };
  while (i < b.length) {
    const key = varint();
    const field = key >>> 3;
    const wire = key & 7;
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const n = varint();
      if (n < 0 || i + n > b.length) throw new ProtoError("truncated field");
      value = b.subarray(i, i + n);
      i += n;
    } else if (wire === 1) {
      i += 8;
      continue;
    } else if (wire === 5) {
      i += 4;
      continue;
    } else throw new ProtoError(`unsupported wire type ${wire}`);
    if (i > b.length) throw new ProtoError("truncated field");
    const list = fields.get(field);
    if (list) list.push(value);
    else fields.set(field, [value]);
  }
  return fields;
}

const messages = (f: Fields, n: number): Uint8Array[] =>
  (f.get(n) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array);
const message = (f: Fields, n: number): Fields | null => {
  const all = messages(f, n);
  return all.length === 0 ? null : readFields(all[all.length - 1]!);
};
const text = (f: Fields | null, n: number): string => {
  const all = f === null ? [] : messages(f, n);
  return all.length === 0 ? "" : Buffer.from(all[all.length - 1]!).toString("utf8");
};
const texts = (f: Fields, n: number): string[] =>
  messages(f, n).map(b => Buffer.from(b).toString("utf8"));
const int = (f: Fields | null, n: number): number => {
  const all = (f?.get(n) ?? []).filter((v): v is number => typeof v === "number");
  return all.length === 0 ? 0 : all[all.length - 1]!;
};

const ACTIONS: readonly HeaderOption["action"][] = [
  "add",
  "add-if-absent",
  "set",
  "set-if-present",
];

/**
 * HeaderValueOption list. In these answers `append` defaults to false (set), as the API says;
 * an explicit `append` wins over `append_action`.
 */
function headerOptions(f: Fields, n: number): HeaderOption[] {
  return messages(f, n).flatMap(b => {
    const o = readFields(b);
    const h = message(o, 1);
    const name = text(h, 1).toLowerCase();
    if (name === "") return [];
    const raw = h === null ? [] : messages(h, 3);
    const value = raw.length > 0 ? Buffer.from(raw[0]!).toString("latin1") : text(h, 2);
    const append = message(o, 2);
    let action: HeaderOption["action"];
    if (append !== null) action = int(append, 1) !== 0 ? "add" : "set";
    else if (o.has(3)) action = ACTIONS[int(o, 3)] ?? "set";
    else action = "set";
    return [{ name, value, action }];
  });
}

export function decodeCheckResponse(b: Uint8Array): CheckVerdict {
  const f = readFields(b);
  const status = message(f, 1);
  const code = int(status, 1);
  if (code === 0) {
    const ok = message(f, 3) ?? new Map();
    return {
      allowed: true,
      headers: headerOptions(ok, 2),
      headersToRemove: texts(ok, 5).map(h => h.toLowerCase()),
      responseHeadersToAdd: headerOptions(ok, 6),
      queryToSet: messages(ok, 7).map(q => {
        const p = readFields(q);
        return [text(p, 1), text(p, 2)];
      }),
      queryToRemove: texts(ok, 8),
    };
  }
  // denied_response (2), or error_response (5): the same shape
  const denied = message(f, 2) ?? message(f, 5);
  return {
    allowed: false,
    code,
    message: text(status, 2),
    httpStatus: int(denied === null ? null : message(denied, 1), 1),
    headers: denied === null ? [] : headerOptions(denied, 2),
    body: text(denied, 3),
  };
}
