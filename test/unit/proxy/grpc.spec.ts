// gRPC through the proxy (a cluster of protocol grpc, as a GRPCRoute's backend compiles to):
// h2c both ways, trailers and trailers-only answers passed through, streams in both directions
// without buffering, the gateway's own errors as gRPC statuses, the client's deadline, resets
// and a config swap under an open stream.
import { expect } from "chai";
import http2 from "node:http2";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import type { GrpcBackend } from "../../helpers/grpc.ts";
import { frame, grpcCall, startGrpcBackend } from "../../helpers/grpc.ts";
import {
  cluster,
  exact,
  freePort,
  prefix,
  route,
  simpleConfig,
  sleep,
  testProxy,
} from "./helpers.ts";

describe("proxy: gRPC", function () {
  this.timeout(20_000);
  let backend: GrpcBackend;
  let px: Proxy;
  let port: number;
  let client: http2.ClientHttp2Session;

  const grpcConfig = (generation = 1, extraRoute = false) =>
    simpleConfig(
      port,
      [
        { routeId: "echo", match: prefix("/test.Echo") },
        { routeId: "down", match: exact("/other.Down/Call") },
        ...(extraRoute ? [{ routeId: "extra", match: prefix("/extra.Svc") }] : []),
      ],
      [
        route("echo", ["grpc"]),
        route("down", ["empty"]),
        ...(extraRoute ? [route("extra", ["grpc"])] : []),
      ],
      [
        cluster("grpc", [backend.port], { protocol: "grpc" }),
        cluster("empty", [], { protocol: "grpc" }),
      ],
      generation,
    );

  beforeEach(async () => {
    backend = await startGrpcBackend("b1");
    port = await freePort();
    px = testProxy();
    expect((await px.apply(grpcConfig())).ok).to.equal(true);
    client = http2.connect(`http://127.0.0.1:${port}`);
    client.on("error", () => {});
  });

  afterEach(async () => {
    client.destroy();
    await px.close(100);
    await backend.close();
  });

  it("proxies a unary call over h2c and passes the backend's trailers through", async () => {
    const call = await grpcCall(client, "/test.Echo/Unary");
    expect(call.status).to.equal(200);
    expect(call.headers["x-served-by"]).to.equal("b1");
    expect(call.messages.map(m => m.toString())).to.deep.equal(["b1:hi"]);
    expect(call.trailers["grpc-status"]).to.equal("0");
    expect(call.trailers["x-trailer"]).to.equal("kept");
    expect(call.reset).to.equal(false);
    // gRPC over HTTP/2 requires te: trailers on the request the backend sees
    expect(backend.calls[0]!.te).to.equal("trailers");
    expect(backend.calls[0]![":authority"]).to.equal("grpc.example.com");
  });

  it("keeps a trailers-only answer trailers-only (one HEADERS frame that ends the stream)", async () => {
    const call = await grpcCall(client, "/test.Echo/NotFound");
    expect(call.headersOnly).to.equal(true);
    expect(call.headers["grpc-status"]).to.equal("5");
    expect(call.headers["grpc-message"]).to.equal("no such thing");
  });

  it("answers a call no route matches with UNIMPLEMENTED, and a backend without endpoints with UNAVAILABLE", async () => {
    const none = await grpcCall(client, "/nothing.Here/Call");
    expect(none.status).to.equal(200);
    expect(none.headersOnly).to.equal(true);
    expect(none.headers["grpc-status"]).to.equal("12");
    expect(none.headers["grpc-message"]).to.match(/no route matches/);
    const down = await grpcCall(client, "/other.Down/Call");
    expect(down.headersOnly).to.equal(true);
    expect(down.headers["grpc-status"]).to.equal("14");
  });

  it("ends a call at the client's grpc-timeout with DEADLINE_EXCEEDED", async () => {
    const call = await grpcCall(client, "/test.Echo/Silent", {
      headers: { "grpc-timeout": "300m" },
    });
    expect(call.headers["grpc-status"]).to.equal("4");
    expect(call.elapsedMs).to.be.within(250, 3000);
  });

  it("streams server messages as the backend sends them, not at the end", async () => {
    const call = await grpcCall(client, "/test.Echo/ServerStream");
    expect(call.messages).to.have.length(5);
    expect(call.trailers["grpc-status"]).to.equal("0");
    // 5 messages 100 ms apart: the first arrives long before the last
    expect(call.arrivals[4]! - call.arrivals[0]!).to.be.greaterThan(250);
  });

  it("streams both ways: each client message is echoed before the next is sent", async () => {
    const call = await grpcCall(client, "/test.Echo/Bidi", {
      send: async (stream, received) => {
        for (let i = 0; i < 3; i++) {
          stream.write(frame(`m${i}`));
          const deadline = Date.now() + 2000;
          while (received.messages.length <= i && Date.now() < deadline) await sleep(10);
          expect(received.messages.length, `echo of m${i} before sending more`).to.equal(i + 1);
        }
        stream.end();
      },
    });
    expect(call.messages.map(m => m.toString())).to.deep.equal(["echo:m0", "echo:m1", "echo:m2"]);
    expect(call.trailers["grpc-status"]).to.equal("0");
  });

  it("delivers every byte of a big response to a slow reader, then the trailers", async () => {
    const call = await grpcCall(client, "/test.Echo/Big", { readDelayMs: 2 });
    expect(call.messages).to.have.length(64);
    expect(call.messages.every(m => m.length === 64 * 1024)).to.equal(true);
    expect(call.trailers["grpc-status"]).to.equal("0");
  });

  it("resets the client's stream when the backend resets mid-stream (never a clean end)", async () => {
    const call = await grpcCall(client, "/test.Echo/Reset");
    expect(call.messages.map(m => m.toString())).to.deep.equal(["partial"]);
    expect(call.reset).to.equal(true);
    expect(call.trailers["grpc-status"]).to.equal(undefined);
  });

  it("keeps an open stream going across a config swap", async () => {
    const call = grpcCall(client, "/test.Echo/Bidi", {
      send: async (stream, received) => {
        stream.write(frame("before"));
        while (received.messages.length < 1) await sleep(10);
        const swapped = await px.apply(grpcConfig(2, true));
        expect(swapped.ok).to.equal(true);
        expect(swapped.generation).to.equal(2);
        stream.write(frame("after"));
        while (received.messages.length < 2) await sleep(10);
        stream.end();
      },
    });
    const done = await call;
    expect(done.messages.map(m => m.toString())).to.deep.equal(["echo:before", "echo:after"]);
    expect(done.trailers["grpc-status"]).to.equal("0");
    // and the new generation serves new calls on the same connection
    const next = await grpcCall(client, "/extra.Svc/Unary");
    expect(next.headers["grpc-status"]).to.equal("12"); // the backend's: it has no such method
  });

  it("passes trailers through an h2c cluster too (an HTTPRoute to an appProtocol kubernetes.io/h2c port)", async () => {
    const h2cPort = await freePort();
    const h2c = testProxy();
    let h2cClient: http2.ClientHttp2Session | null = null;
    try {
      const applied = await h2c.apply(
        simpleConfig(
          h2cPort,
          [{ routeId: "h2c", match: prefix("/") }],
          [route("h2c", ["h2c"])],
          [cluster("h2c", [backend.port], { protocol: "h2c" })],
        ),
      );
      expect(applied.ok).to.equal(true);
      h2cClient = http2.connect(`http://127.0.0.1:${h2cPort}`);
      h2cClient.on("error", () => {});
      const call = await grpcCall(h2cClient, "/test.Echo/Big", { readDelayMs: 1 });
      expect(call.messages).to.have.length(64);
      expect(call.trailers["grpc-status"]).to.equal("0");
      expect(call.trailers["x-trailer"]).to.equal("kept");
    } finally {
      h2cClient?.destroy();
      await h2c.close(100);
    }
  });

  it("counts calls by route and grpc-status", async () => {
    await grpcCall(client, "/test.Echo/Unary");
    await grpcCall(client, "/test.Echo/NotFound");
    await grpcCall(client, "/other.Down/Call");
    const text = await px.metrics.registry.getSingleMetricAsString("rauta_grpc_responses_total");
    expect(text).to.include('rauta_grpc_responses_total{route="echo",grpc_status="0"} 1');
    expect(text).to.include('rauta_grpc_responses_total{route="echo",grpc_status="5"} 1');
    expect(text).to.include('rauta_grpc_responses_total{route="down",grpc_status="14"} 1');
  });
});
