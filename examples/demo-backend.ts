// The demo backends for examples/, all on 127.0.0.1:
//   "api" (9001) and "web" (9002): HTTP servers that answer with a JSON description of the
//     request they received (gateway.yaml's HTTPRoutes);
//   "greeter" (9003): the gRPC service demo.Greeter of grpc/greeter.proto, over h2c
//     (streams.yaml's GRPCRoute);
//   "tls-echo" (9004): a TLS server for echo.tls.localhost that echoes each line with the server
//     name it saw (streams.yaml's TLSRoute passes TLS through to it). Its certificate,
//     tls/demo.crt, is a self-signed demo certificate: never use it for anything else.
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import path from "node:path";
import tls from "node:tls";

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const log = (what: string) => process.stderr.write(`demo backend ${what}\n`);

const backends: Array<[string, number]> = [
  ["api", port("DEMO_API_PORT", 9001)],
  ["web", port("DEMO_WEB_PORT", 9002)],
];

for (const [name, p] of backends) {
  http
    .createServer((req, res) => {
      const body = `${JSON.stringify({ backend: name, method: req.method, path: req.url, headers: req.headers }, null, 2)}\n`;
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    })
    .listen(p, "127.0.0.1", () => log(`"${name}" on http://127.0.0.1:${p}`));
}

// Protocol Buffers for one string field (field 1, wire type 2), enough for HelloRequest and
// HelloReply without a protobuf library: tag 0x0a, varint length, UTF-8 bytes.
function stringField(message: Buffer): string {
  if (message.length === 0) return "";
  if (message[0] !== 0x0a) throw new Error("not a HelloRequest");
  let length = 0;
  let shift = 0;
  let i = 1;
  for (; i < message.length; i++) {
    length |= (message[i]! & 0x7f) << shift;
    shift += 7;
    if ((message[i]! & 0x80) === 0) break;
  }
  return message.toString("utf8", i + 1, i + 1 + length);
}

function encodeString(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const varint: number[] = [];
  let n = bytes.length;
  do {
    varint.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x0a, ...varint]), bytes]);
}

// gRPC messages: a flag byte (0: not compressed), a 4-byte length, the message
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const greeterPort = port("DEMO_GRPC_PORT", 9003);
const greeter = http2.createServer();
greeter.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
  stream.on("error", () => {});
  if (headers[":path"] !== "/demo.Greeter/SayHello") {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": "12" },
      { endStream: true },
    );
    return;
  }
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    const body = Buffer.concat(chunks);
    let reply: Buffer;
    try {
      const name = body.length >= 5 ? stringField(body.subarray(5, 5 + body.readUInt32BE(1))) : "";
      reply = encodeString(
        `Hello, ${name || "world"}! (from greeter via ${String(headers["via"] ?? "no proxy")})`,
      );
    } catch {
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "3",
          "grpc-message": "bad HelloRequest",
        },
        { endStream: true },
      );
      return;
    }
    stream.respond(
      { ":status": 200, "content-type": "application/grpc" },
      { waitForTrailers: true },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(grpcFrame(reply));
  });
});
greeter.listen(greeterPort, "127.0.0.1", () =>
  log(`"greeter" (gRPC demo.Greeter, h2c) on 127.0.0.1:${greeterPort}`),
);

const tlsPort = port("DEMO_TLS_PORT", 9004);
const dir = path.join(import.meta.dirname, "tls");
tls
  .createServer(
    {
      cert: fs.readFileSync(path.join(dir, "demo.crt")),
      key: fs.readFileSync(path.join(dir, "demo.key")),
    },
    socket => {
      socket.on("error", () => {});
      socket.write(`tls-echo: TLS ended here, at the backend, for ${String(socket.servername)}\n`);
      socket.on("data", (d: Buffer) => socket.write(`tls-echo: ${d.toString()}`));
    },
  )
  .listen(tlsPort, "127.0.0.1", () =>
    log(`"tls-echo" (TLS, echo.tls.localhost) on 127.0.0.1:${tlsPort}`),
  );
