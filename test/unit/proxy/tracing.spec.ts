// Request tracing (OpenTelemetry): a SERVER span per request exported over OTLP/HTTP, W3C trace
// context from the client to the backend, sampling, and an export path that never holds requests
// back when the collector is away.
import { expect } from "chai";
import http from "node:http";
import net from "node:net";
import { Writable } from "node:stream";
import winston from "winston";
import type { Tracing } from "../../../proxy/config/schema.ts";
import { tracingFromFlags } from "../../../proxy/cli/tracing-flags.ts";
import { tracesUrl } from "../../../proxy/observability/tracing.ts";
import { startOtlpReceiver } from "../../helpers/otlp-receiver.ts";
import type { OtlpReceiver } from "../../helpers/otlp-receiver.ts";
import {
  cluster,
  freePort,
  get,
  oneRouteConfig,
  prefix,
  route,
  simpleConfig,
  startEcho,
  testProxy,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

const PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN = "00f067aa0ba902b7";

describe("proxy: request tracing (OpenTelemetry)", function () {
  this.timeout(30_000);
  let echo: Echo;
  let rx: OtlpReceiver;
  before(async () => {
    echo = await startEcho("a");
  });
  after(async () => {
    await echo.close();
  });
  beforeEach(async () => {
    rx = await startOtlpReceiver();
  });
  afterEach(async () => {
    await rx.close();
  });

  const settings = (extra: Partial<Tracing> = {}): Tracing => ({
    endpoint: rx.url,
    samplingRatio: 1,
    parentBased: true,
    serviceName: "rauta-test",
    ...extra,
  });
  const fast = { batchDelayMs: 20 };

  it("exports a server span that is the client's traceparent's child and the backend's parent", async () => {
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    const res = await get(port, "/hello?x=1", {
      headers: {
        traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`,
        tracestate: "vendor=abc",
        "user-agent": "tracing-test",
      },
    });
    expect(res.status).to.equal(200);
    const [span] = await rx.waitFor(1);
    expect(span!.traceId).to.equal(PARENT_TRACE);
    expect(span!.parentSpanId).to.equal(PARENT_SPAN);
    expect(span!.kind).to.equal(2); // SERVER (OTLP enum)
    expect(span!.name).to.equal("GET r");
    expect(span!.resource["service.name"]).to.equal("rauta-test");
    expect(span!.attributes).to.include({
      "http.request.method": "GET",
      "url.path": "/hello",
      "url.query": "x=1",
      "url.scheme": "http",
      "http.response.status_code": 200,
      "rauta.route": "r",
      "rauta.backend": "a",
      "rauta.upstream.address": "127.0.0.1",
      "rauta.upstream.port": echo.port,
      "user_agent.original": "tracing-test",
      "client.address": "127.0.0.1",
    });
    // the backend's parent is the gateway's span; the client's tracestate goes along
    const seen = res.json().headers;
    expect(seen.traceparent).to.equal(`00-${PARENT_TRACE}-${span!.spanId}-01`);
    expect(seen.tracestate).to.equal("vendor=abc");
    await px.close(100);
  });

  it("starts a new trace for a request without traceparent (or with a malformed one)", async () => {
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    const plain = await get(port, "/");
    const bad = await get(port, "/", { headers: { traceparent: "00-zz-yy-01" } });
    const spans = await rx.waitFor(2);
    for (const [i, res] of [plain, bad].entries()) {
      const s = spans[i]!;
      expect(s.parentSpanId).to.equal("");
      expect(s.traceId).to.match(/^[0-9a-f]{32}$/);
      expect(res.json().headers.traceparent).to.equal(`00-${s.traceId}-${s.spanId}-01`);
    }
    expect(spans[0]!.traceId).to.not.equal(spans[1]!.traceId);
    await px.close(100);
  });

  it("follows the client's unsampled flag when parent-based, still passing the trace on", async () => {
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    const res = await get(port, "/", {
      headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-00` },
    });
    const tp = res.json().headers.traceparent!;
    expect(tp).to.match(new RegExp(`^00-${PARENT_TRACE}-[0-9a-f]{16}-00$`));
    await get(port, "/sampled", {
      headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` },
    });
    const spans = await rx.waitFor(1);
    await new Promise(r => setTimeout(r, 200));
    expect(rx.spans.map(s => s.attributes["url.path"])).to.deep.equal(["/sampled"]);
    expect(spans[0]!.traceId).to.equal(PARENT_TRACE);
    await px.close(100);
  });

  it("samples by its own ratio when not parent-based: 0 records nothing, whatever the client says", async () => {
    const port = await freePort();
    const px = testProxy({
      tracing: settings({ samplingRatio: 0, parentBased: false }),
      tracingOptions: fast,
    });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    for (let i = 0; i < 20; i++)
      expect(
        (await get(port, "/", { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } }))
          .status,
      ).to.equal(200);
    await new Promise(r => setTimeout(r, 300));
    expect(rx.spans).to.have.length(0);
    await px.close(100);
  });

  it("keeps about the configured share of new traces (ratio 0.25 of 400 requests)", async () => {
    const port = await freePort();
    const px = testProxy({ tracing: settings({ samplingRatio: 0.25 }), tracingOptions: fast });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    for (let i = 0; i < 400; i++) await get(port, "/");
    await px.close(100); // flushes what is queued
    // binomial(400, 0.25): mean 100, sd ≈ 8.7; ±5 sd
    expect(rx.spans.length).to.be.within(56, 144);
  });

  it("records retries as events, and a 5xx answer as an error span", async () => {
    let calls = 0;
    const flaky = await startEcho("flaky", (_req, res) => {
      if (++calls > 2) return false;
      res.writeHead(503, { "content-length": "0" }).end();
      return true;
    });
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(
      oneRouteConfig(port, cluster("f", [flaky.port]), {
        retry: { attempts: 1, codes: [503], backoffMs: 1 },
      }),
    );
    expect((await get(port, "/")).status).to.equal(503); // two tries, both 503
    expect((await get(port, "/")).status).to.equal(200); // the third call answers
    const [failed, ok] = await rx.waitFor(2);
    expect(failed!.events.map(e => e.name)).to.deep.equal(["retry"]);
    expect(failed!.events[0]!.attributes).to.include({
      "rauta.attempt": 1,
      "rauta.retry.reason": "status 503",
    });
    expect(failed!.attributes).to.include({
      "http.response.status_code": 503,
      "rauta.attempts": 2,
      "error.type": "503",
    });
    expect(failed!.status.code).to.equal(2); // ERROR
    expect(ok!.status.code).to.equal(0);
    await px.close(100);
    await flaky.close();
  });

  it("traces requests the gateway answers itself: no route (404) and a rate limit (429)", async () => {
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "limited", match: prefix("/limited") }],
        [
          route("limited", ["a"], {
            rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 1, key: { type: "Route" } },
          }),
        ],
        [cluster("a", [echo.port])],
      ),
    );
    expect((await get(port, "/nowhere")).status).to.equal(404);
    expect((await get(port, "/limited")).status).to.equal(200);
    expect((await get(port, "/limited")).status).to.equal(429);
    const spans = await rx.waitFor(3);
    expect(spans.map(s => [s.name, s.attributes["http.response.status_code"]])).to.deep.equal([
      ["GET", 404],
      ["GET limited", 200],
      ["GET limited", 429],
    ]);
    expect(spans[0]!.attributes["rauta.route"]).to.equal(undefined);
    expect(spans[2]!.status.code).to.equal(0); // a 4xx is the client's, not an error of ours
    await px.close(100);
  });

  it("takes a listener's own tracing from the config over the proxy's flags, and stops with it", async () => {
    const other = await startOtlpReceiver();
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    const cfg = (generation: number, tracing?: Tracing) =>
      simpleConfig(
        port,
        [{ routeId: "r", match: prefix("/") }],
        [route("r", ["a"])],
        [cluster("a", [echo.port])],
        generation,
        tracing ? { tracing } : {},
      );
    await px.apply(cfg(1, settings({ endpoint: other.url, serviceName: "from-policy" })));
    await get(port, "/");
    const [s] = await other.waitFor(1);
    expect(s!.resource["service.name"]).to.equal("from-policy");
    // the policy goes: the flags' settings apply again
    await px.apply(cfg(2));
    await get(port, "/");
    const [f] = await rx.waitFor(1);
    expect(f!.resource["service.name"]).to.equal("rauta-test");
    expect(other.spans).to.have.length(1);
    await px.close(100);
    await other.close();
  });

  it("never holds requests back when the collector is down: spans past the bounded queue are dropped and counted", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const port = await freePort();
    const px = testProxy({
      tracing: settings({ endpoint: dead }),
      tracingOptions: { maxQueueSpans: 64, maxBatchSpans: 16, batchDelayMs: 10 },
    });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    const statuses = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const s = (await get(port, "/")).status;
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
      expect(px.tracers.pending).to.be.at.most(64);
    }
    expect([...statuses]).to.deep.equal([[200, 500]]);
    const text = await px.metrics.registry.metrics();
    const count = (result: string) =>
      Number(
        new RegExp(`rauta_tracing_spans_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0,
      );
    expect(count("dropped")).to.be.greaterThan(0);
    expect(count("exported")).to.equal(0);
    expect(count("dropped") + count("export_failed") + px.tracers.pending).to.equal(500);
    await px.close(100);
  });

  it("puts the trace id in access log lines", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = winston.createLogger({
      format: winston.format.json(),
      transports: [
        new winston.transports.Stream({
          stream: new Writable({
            write(chunk: Buffer, _enc, done) {
              lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
              done();
            },
          }),
        }),
      ],
    });
    const port = await freePort();
    const px = testProxy({
      logger,
      handler: { accessLog: true },
      tracing: settings(),
      tracingOptions: fast,
    });
    await px.apply(oneRouteConfig(port, cluster("a", [echo.port])));
    await get(port, "/", { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } });
    const access = lines.find(l => l.message === "access");
    expect(access).to.include({ traceId: PARENT_TRACE, sampled: true, status: 200 });
    await px.close(100);
  });

  it("traces a WebSocket upgrade up to its 101, passing the trace context to the backend", async () => {
    let seen: string | undefined;
    const ws = http.createServer();
    ws.on("upgrade", (req, socket: net.Socket) => {
      seen = req.headers.traceparent as string | undefined;
      socket.end(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      );
    });
    await new Promise<void>(r => ws.listen(0, "127.0.0.1", () => r()));
    const wsPort = (ws.address() as net.AddressInfo).port;
    const port = await freePort();
    const px = testProxy({ tracing: settings(), tracingOptions: fast });
    await px.apply(
      simpleConfig(
        port,
        [{ routeId: "ws", match: prefix("/") }],
        [route("ws", ["ws"])],
        [cluster("ws", [wsPort], { protocol: "ws" })],
      ),
    );
    const head = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, "127.0.0.1");
      let buf = "";
      c.on("data", d => {
        buf += d.toString("latin1");
        if (buf.includes("\r\n\r\n")) {
          c.destroy();
          resolve(buf);
        }
      });
      c.on("error", reject);
      c.write(
        `GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\ntraceparent: 00-${PARENT_TRACE}-${PARENT_SPAN}-01\r\n\r\n`,
      );
    });
    expect(head).to.match(/^HTTP\/1\.1 101/);
    const [span] = await rx.waitFor(1);
    expect(span!.parentSpanId).to.equal(PARENT_SPAN);
    expect(span!.attributes).to.include({
      "http.response.status_code": 101,
      "rauta.backend": "ws",
    });
    expect(seen).to.equal(`00-${PARENT_TRACE}-${span!.spanId}-01`);
    await px.close(100);
    await new Promise<void>(r => ws.close(() => r()));
  });

  it("takes its standalone settings from the --tracing-* flags, refusing bad ones", () => {
    expect(tracingFromFlags({})).to.equal(null);
    expect(
      tracingFromFlags({
        "tracing-endpoint": "http://127.0.0.1:4318",
        "tracing-sample-ratio": "0.01",
      }),
    ).to.deep.equal({
      endpoint: "http://127.0.0.1:4318",
      samplingRatio: 0.01,
      parentBased: true,
      serviceName: "rauta",
    });
    expect(tracingFromFlags({ "tracing-sample-ratio": "0.5" })).to.deep.equal({
      error: "--tracing-sample-ratio needs --tracing-endpoint",
    });
    expect(
      tracingFromFlags({ "tracing-endpoint": "http://x:4318", "tracing-sample-ratio": "2" }),
    ).to.deep.equal({ error: "--tracing-sample-ratio: expected a number 0..1, got 2" });
    expect(tracingFromFlags({ "tracing-endpoint": "collector:4318" })).to.deep.equal({
      error: "--tracing-endpoint: expected an http(s) URL, got collector:4318",
    });
    expect(tracesUrl("http://c:4318")).to.equal("http://c:4318/v1/traces");
    expect(tracesUrl("http://c:4318/custom/path")).to.equal("http://c:4318/custom/path");
  });
});
