// Tracing against a real OpenTelemetry Collector (hack/otelcol: OTLP/HTTP receiver, file
// exporter): `rauta serve` on Gateway API YAML whose ClientTrafficPolicy turns tracing on, the
// spans read back from the collector's file. Then the collector hangs and goes away under load:
// every request is still served, the export queue stays bounded and what is lost is counted.
import { expect } from "chai";
import fs from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { Agent, request } from "undici";
import { kill } from "../../hack/bench/lib.ts";
import { benchGatewayYaml, startServe, upstreamYaml } from "../../hack/bench/serve-target.ts";
import type { ServeTarget } from "../../hack/bench/serve-target.ts";
import { freePort } from "../helpers/net.ts";
import { startOtelCollector, tracingCounters } from "../helpers/otel-collector.ts";
import type { OtelCollector } from "../helpers/otel-collector.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

function gatewayYaml(port: number, upstream: number, collector: string): string {
  return `${[
    benchGatewayYaml(port),
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop, namespace: default }
spec:
  parentRefs: [{ name: bench }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /shop } }]
      backendRefs: [{ name: up, port: 80 }]`,
    `apiVersion: rauta.io/v1alpha1
kind: ClientTrafficPolicy
metadata: { name: tracing, namespace: default }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: bench }]
  tracing: { endpoint: "${collector}", samplingRate: 100, serviceName: shop-gateway }`,
    upstreamYaml(upstream),
  ].join("\n---\n")}\n`;
}

describe("tracing against a real OpenTelemetry Collector (rauta serve, ClientTrafficPolicy)", function () {
  this.timeout(10 * 60_000);
  let collector: OtelCollector;
  let backend: http.Server;
  const seen: Array<string | undefined> = [];
  let target: ServeTarget;
  let tmp = "";
  const agent = new Agent({ connections: 64 });

  const get = async (pathname: string, headers: Record<string, string> = {}) => {
    const r = await request(`${target.url}${pathname}`, { dispatcher: agent, headers });
    await r.body.text();
    return r.statusCode;
  };

  /** `total` requests, `concurrency` at a time; the status codes counted, the queue sampled. */
  async function load(total: number, concurrency: number) {
    const statuses = new Map<number | string, number>();
    let maxQueued = 0;
    let sent = 0;
    const sampler = setInterval(() => {
      tracingCounters(target.metricsPort).then(
        m => (maxQueued = Math.max(maxQueued, m.queued!)),
        () => {},
      );
    }, 100);
    const started = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (sent < total) {
          sent++;
          const s = await get("/shop/item").catch((e: Error) => e.message);
          statuses.set(s, (statuses.get(s) ?? 0) + 1);
        }
      }),
    );
    clearInterval(sampler);
    return { statuses: Object.fromEntries(statuses), maxQueued, ms: Date.now() - started };
  }

  before(async () => {
    collector = await startOtelCollector();
    backend = http.createServer((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.end("ok");
    });
    await new Promise<void>(r => backend.listen(0, "127.0.0.1", () => r()));
    const port = await freePort();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-it-tracing-"));
    fs.writeFileSync(
      path.join(tmp, "gateway.yaml"),
      gatewayYaml(port, (backend.address() as net.AddressInfo).port, collector.endpoint),
    );
    target = {
      name: "rauta serve (tracing)",
      url: `http://127.0.0.1:${port}`,
      headers: [],
      dir: tmp,
      metricsPort: await freePort(),
      p: null,
    };
    await startServe(target);
  });

  after(async () => {
    await kill(target?.p ?? null);
    await collector?.stop();
    await agent.close();
    await new Promise(r => backend?.close(r));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("exports the gateway's span as the child of the client's traceparent, and is the backend's parent", async () => {
    seen.length = 0;
    expect(await get("/shop/cart", { traceparent: `00-${TRACE}-${PARENT}-01` })).to.equal(200);
    // the batch goes out on the exporter's schedule, not with the response
    const spans = await collector.waitFor(1, 20_000);
    const span = spans.find(s => s.traceId === TRACE);
    expect(span, JSON.stringify(spans)).to.not.equal(undefined);
    expect(span!.parentSpanId).to.equal(PARENT);
    expect(span!.kind).to.equal(2); // SERVER
    expect(span!.resource["service.name"]).to.equal("shop-gateway");
    expect(span!.attributes).to.include({
      "http.request.method": "GET",
      "url.path": "/shop/cart",
      "http.response.status_code": 200,
    });
    expect(span!.attributes["rauta.route"]).to.be.a("string").and.include("shop");
    expect(seen).to.deep.equal([`00-${TRACE}-${span!.spanId}-01`]);
  });

  it("starts a trace at the gateway for a request that brings none (a root span)", async () => {
    seen.length = 0;
    const before = collector.spans().length;
    expect(await get("/shop/new")).to.equal(200);
    const spans = (await collector.waitFor(before + 1, 20_000)).slice(before);
    const span = spans.find(s => s.attributes["url.path"] === "/shop/new")!;
    expect(span.parentSpanId).to.equal("");
    expect(seen).to.deep.equal([`00-${span.traceId}-${span.spanId}-01`]);
  });

  it("serves every request while the collector hangs, comes back and then is gone; the queue stays bounded and drops are counted", async () => {
    const m0 = await tracingCounters(target.metricsPort);
    // hung: the kernel accepts the exporter's connections, nothing answers them
    collector.freeze();
    const hung = await load(8000, 50);
    expect(hung.statuses).to.deep.equal({ 200: 8000 });
    const m1 = await tracingCounters(target.metricsPort);
    expect(hung.maxQueued, JSON.stringify({ hung, m1 })).to.be.at.most(2048);
    expect(m1.queued).to.be.at.most(2048);
    // more spans than the queue holds were made while nothing left: the rest were dropped, counted
    expect(m1.dropped! - m0.dropped!, JSON.stringify({ m0, m1 })).to.be.greaterThan(0);
    // back: what was queued gets out again
    collector.thaw();
    for (let i = 0; ; i++) {
      const m = await tracingCounters(target.metricsPort);
      if (m.exported! > m1.exported!) break;
      if (i === 150)
        expect.fail(`no span exported after the collector came back: ${JSON.stringify(m)}`);
      await new Promise(r => setTimeout(r, 200));
    }
    // gone: every export is refused at once
    await collector.stop();
    const gone = await load(4000, 50);
    expect(gone.statuses).to.deep.equal({ 200: 4000 });
    const m2 = await tracingCounters(target.metricsPort);
    expect(m2.queued).to.be.at.most(2048);
    console.log(
      `      hung collector: 8000 requests in ${hung.ms} ms, queue peak ${hung.maxQueued}; gone: 4000 in ${gone.ms} ms; spans ${JSON.stringify(m2)}`,
    );
  });
});
