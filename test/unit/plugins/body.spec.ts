// Bodies for plugins that set needsBody (ABI.md: input flags bit 0 = a body follows, bit 1 = cut
// at maxBodyBytes), over real sockets: the request body is read ahead and replayed upstream
// byte for byte, the response body is held back until the plugin decided, and a plugin never
// sees more than its maxBodyBytes. The plugin is the SDK's test module sdk-body (refuses
// "forbidden" in a request body, withholds "secret" in a response body, else reports what it saw).
import { expect } from "chai";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import {
  startEcho,
  freePort,
  config,
  listener,
  prefix,
  route,
  cluster,
  testProxy,
  get,
} from "../proxy/helpers.ts";
import type { Echo } from "../proxy/helpers.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import type { Plugin } from "../../../proxy/config/schema.ts";
import { plugins } from "./helpers.ts";

function bodyPlugin(id: string, wasm: string, maxBodyBytes: number): Plugin {
  return {
    id,
    source: { inline: wasm },
    config: {},
    needsBody: true,
    failurePolicy: "FailClosed",
    limits: { memoryMiB: 16, timeoutMs: 1000, maxBodyBytes },
  };
}

/** Sends the body in pieces with pauses, as a slow client would; resolves with the answer. */
function post(
  port: number,
  path: string,
  pieces: Buffer[],
  gapMs = 0,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: "POST", headers: { "content-type": "text/plain" } },
      res => {
        const chunks: Buffer[] = [];
        res.on("data", c => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    (async () => {
      for (const p of pieces) {
        req.write(p);
        if (gapMs) await new Promise(r => setTimeout(r, gapMs));
      }
      req.end();
    })().catch(reject);
  });
}

describe("plugin bodies (needsBody, maxBodyBytes)", function () {
  this.timeout(30_000);
  let a: Echo, port: number, proxy: Proxy;

  before(async () => {
    const wasm = fs.readFileSync((await plugins()).get("sdk-body")!.path).toString("base64");
    a = await startEcho("a");
    port = await freePort();
    proxy = testProxy({
      plugins: { cacheDir: `${process.env.RAUTA_TEST_CACHE ?? "/tmp"}/rauta-test-plugins` },
    });
    const routes = [
      route("whole", ["a"], { filters: [{ type: "Plugin", pluginId: "t/whole" }] }),
      route("cut", ["a"], { filters: [{ type: "Plugin", pluginId: "t/cut" }] }),
      route("slow", ["a"], {
        filters: [{ type: "Plugin", pluginId: "t/whole" }],
        timeouts: { requestMs: 300 },
      }),
    ];
    const r = await proxy.apply(
      config({
        listeners: [
          listener(port, [
            {
              hostname: "*",
              routes: routes.map(x => ({ routeId: x.id, match: prefix(`/${x.id}`) })),
            },
          ]),
        ],
        routes,
        clusters: [cluster("a", [a.port])],
        plugins: [bodyPlugin("t/whole", wasm, 1 << 20), bodyPlugin("t/cut", wasm, 16)],
      }),
    );
    expect(r.ok, r.problems.join("\n")).to.equal(true);
  });
  after(async () => {
    await proxy.close(100);
    await a.close();
  });

  it("gives the plugin the request body, and the upstream the same bytes", async () => {
    const r = await post(port, "/whole", [Buffer.from("hello, "), Buffer.from("plugin")]);
    expect(r.status).to.equal(200);
    const seen = JSON.parse(r.body) as { body: string; headers: Record<string, string> };
    expect(seen.body).to.equal("hello, plugin");
    expect(seen.headers["x-body-seen"]).to.equal("13:whole");
    // on_response saw the whole echo (it is under 1 MiB)
    expect(r.headers["x-response-body-seen"]).to.equal(`${Buffer.byteLength(r.body)}:whole`);
  });

  it("refuses on what the body holds; nothing reaches the upstream", async () => {
    const hits = a.hits;
    const r = await post(port, "/whole", [Buffer.from("this is forbidden")]);
    expect(r.status).to.equal(403);
    expect(r.body).to.equal("body refused\n");
    expect(a.hits).to.equal(hits);
  });

  it("shows a plugin at most maxBodyBytes, marked truncated; the upstream still gets every byte", async () => {
    const pieces = Array.from({ length: 50 }, (_, i) => Buffer.alloc(2048, 97 + (i % 26)));
    const r = await post(port, "/cut", pieces, 1);
    expect(r.status).to.equal(200);
    const seen = JSON.parse(r.body) as { body: string; headers: Record<string, string> };
    expect(seen.headers["x-body-seen"]).to.equal("16:truncated");
    expect(seen.body).to.equal(Buffer.concat(pieces).toString());
    expect(r.headers["x-response-body-seen"]).to.equal("16:truncated");
  });

  it("withholds a response on what its body holds (on_response with the body)", async () => {
    // the echo repeats the request body in its answer
    const r = await post(port, "/whole", [Buffer.from("a secret")]);
    expect(r.status).to.equal(502);
    expect(r.body).to.equal("response withheld\n");
  });

  it("passes a request without a body as an empty one", async () => {
    const r = await get(port, "/whole");
    expect(r.status).to.equal(200);
    expect(r.json().headers["x-body-seen"]).to.equal("0:whole");
  });

  it("answers 408 when the body does not arrive within the route's request timeout", async () => {
    const s = net.connect(port, "127.0.0.1");
    await new Promise(r => s.once("connect", r));
    s.write("POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly part");
    const answer = await new Promise<string>(resolve => {
      let buf = "";
      s.on("data", d => (buf += d.toString()));
      s.on("close", () => resolve(buf));
      s.on("end", () => resolve(buf));
      setTimeout(() => resolve(buf), 5000);
    });
    s.destroy();
    expect(answer).to.match(/^HTTP\/1\.1 408/);
    expect(answer).to.match(/\r\nconnection: close\r\n/i);
    expect(answer).to.contain("the request body did not arrive within 300 ms");
  });
});
