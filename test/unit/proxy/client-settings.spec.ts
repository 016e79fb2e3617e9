// A listener's client settings from the config (what a ClientTrafficPolicy sets): the client
// address behind trusted proxies, header and body limits, timeouts applied to a listening
// socket, HTTP/2 settings.
import { expect } from "chai";
import http2 from "node:http2";
import { forwardedClient } from "../../../proxy/server/handler.ts";
import type { ClientSettings } from "../../../proxy/config/schema.ts";
import {
  cluster,
  get,
  prefix,
  rawExchange,
  route,
  simpleConfig,
  startEcho,
  servingConfig,
} from "./helpers.ts";
import type { Echo } from "./helpers.ts";

describe("proxy: client settings of listeners (ClientTrafficPolicy)", function () {
  this.timeout(20_000);
  let a: Echo;
  before(async () => {
    a = await startEcho("a");
  });
  after(async () => {
    await a.close();
  });

  const configWith = (port: number, client: ClientSettings | undefined, generation = 1) =>
    simpleConfig(
      port,
      [{ routeId: "r", match: prefix("/") }],
      [
        route("r", ["a"], {
          rateLimit: { requests: 1, intervalMs: 3_600_000, burst: 1, key: { type: "ClientIP" } },
        }),
      ],
      [cluster("a", [a.port])],
      generation,
      client ? { client } : {},
    );

  it("rate-limits the client X-Forwarded-For names when the listener trusts the proxy in front", async () => {
    const { port, px } = await servingConfig(port => configWith(port, { trustedHops: 1 }));
    const from = async (xff: string) => get(port, "/", { headers: { "x-forwarded-for": xff } });
    expect((await from("203.0.113.7")).status).to.equal(200);
    expect((await from("203.0.113.7")).status).to.equal(429);
    const other = await from("198.51.100.2");
    expect(other.status).to.equal(200);
    // the backend still learns the hop this gateway saw
    expect(other.json().headers["x-forwarded-for"]).to.equal("198.51.100.2, 127.0.0.1");
    await px.close(100);
  });

  it("ignores X-Forwarded-For without trusted hops: every request is the peer's", async () => {
    const { port, px } = await servingConfig(port => configWith(port, undefined));
    const from = async (xff: string) =>
      (await get(port, "/", { headers: { "x-forwarded-for": xff } })).status;
    expect([await from("203.0.113.7"), await from("198.51.100.2")]).to.deep.equal([200, 429]);
    await px.close(100);
  });

  it("finds the client the trusted hops vouch for, and the peer when they cannot", () => {
    expect(forwardedClient("203.0.113.7", 1)).to.equal("203.0.113.7");
    expect(forwardedClient("spoofed, 203.0.113.7, 10.0.0.2", 2)).to.equal("203.0.113.7");
    expect(forwardedClient(["1.1.1.1", "2001:db8::1"], 1)).to.equal("2001:db8::1");
    expect(forwardedClient("203.0.113.7", 2)).to.equal(null);
    expect(forwardedClient("not-an-ip", 1)).to.equal(null);
    expect(forwardedClient(undefined, 1)).to.equal(null);
  });

  it("answers 431 past the listener's header count and 413 past its declared body size", async () => {
    const { port, px } = await servingConfig(port =>
      configWith(port, { maxHeaderCount: 6, maxRequestBodyBytes: 10 }),
    );
    const headers: Record<string, string> = {};
    for (let i = 0; i < 8; i++) headers[`x-h${i}`] = "v";
    expect((await get(port, "/", { headers })).status).to.equal(431);
    const big = await get(port, "/", { method: "POST", body: "x".repeat(11) });
    expect(big.status).to.equal(413);
    await px.close(100);
  });

  it("applies a new request-headers timeout to the listening socket without binding it again", async () => {
    const { port, px } = await servingConfig(port => configWith(port, undefined));
    const server = [...px.listenerServers.values()][0];
    await px.apply(configWith(port, { requestHeadersTimeoutMs: 300 }, 2));
    expect([...px.listenerServers.values()][0]).to.equal(server);
    const started = Date.now();
    // a head that never ends: 408 once the timeout (checked every second by Node) passed
    const reply = await rawExchange(port, "GET / HTTP/1.1\r\nHost: example.com\r\n", 5000);
    expect(reply).to.match(/^HTTP\/1\.1 408/);
    expect(Date.now() - started).to.be.below(4000);
    await px.close(100);
  });

  it("advertises the listener's HTTP/2 settings (a changed setting binds the socket anew)", async () => {
    const { port, px } = await servingConfig(port =>
      configWith(port, { http2: { maxConcurrentStreams: 7 } }),
    );
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.once("remoteSettings", resolve);
      session.once("error", reject);
    });
    expect(settings.maxConcurrentStreams).to.equal(7);
    session.close();
    await px.close(100);
  });
});
