// IP allow and deny lists of a route (a SecurityPolicy's authorization) on the real client
// address: first matching rule decides, else the default; 403 before CORS or auth; the client
// the trusted X-Forwarded-For hops name is the one checked.
import { expect } from "chai";
import type { Authorization, Route } from "../../../proxy/config/schema.ts";
import { CompiledConfig } from "../../../proxy/config/schema.ts";
import { IpAuthorizationStep } from "../../../proxy/pipeline/steps/ip-authorization.ts";
import { cluster, get, prefix, route, simpleConfig, startEcho, servingConfig } from "./helpers.ts";
import type { Echo } from "./helpers.ts";

const allowList = (...cidrs: string[]): Authorization => ({
  defaultAction: "Deny",
  rules: [{ action: "Allow", cidrs }],
});

describe("proxy: IP allow and deny lists (SecurityPolicy authorization)", function () {
  this.timeout(20_000);
  let a: Echo;
  before(async () => {
    a = await startEcho("a");
  });
  after(async () => {
    await a.close();
  });

  it("decides by the first rule whose ranges hold the client, IPv4 and IPv6", () => {
    const step = new IpAuthorizationStep({
      defaultAction: "Allow",
      rules: [
        { action: "Allow", cidrs: ["10.1.2.0/24"] },
        { action: "Deny", cidrs: ["10.0.0.0/8", "2001:db8::/32"] },
      ],
    });
    expect(step.allows("10.1.2.3")).to.equal(true); // the allow rule comes first
    expect(step.allows("10.9.9.9")).to.equal(false);
    expect(step.allows("2001:db8::1")).to.equal(false);
    expect(step.allows("2001:db9::1")).to.equal(true);
    expect(step.allows("192.0.2.1")).to.equal(true); // the default
    const only = new IpAuthorizationStep(allowList("192.0.2.7/32"));
    expect([only.allows("192.0.2.7"), only.allows("192.0.2.8")]).to.deep.equal([true, false]);
  });

  it("refuses a config whose ranges are not ranges, naming them", () => {
    const bad = (cidrs: string[]) => {
      const cfg = simpleConfig(
        80,
        [{ routeId: "r", match: prefix("/") }],
        [route("r", ["a"], { authorization: allowList(...cidrs) } as Partial<Route>)],
        [cluster("a", [1])],
      );
      const r = CompiledConfig.safeParse(cfg);
      return r.success ? [] : r.error.issues.map(i => i.message).join("; ");
    };
    expect(bad(["10.0.0.0/33"])).to.include("the prefix length must be 0 to 32");
    expect(bad(["example.com/8"])).to.include("is not an IP address");
    expect(bad(["10.0.0.1"])).to.include("no prefix length");
    expect(bad(["2001:db8::/48"])).to.deep.equal([]);
  });

  async function serving(authorization: Authorization, client?: { trustedHops: number }) {
    return servingConfig(port =>
      simpleConfig(
        port,
        [{ routeId: "r", match: prefix("/") }],
        [
          route("r", ["a"], {
            authorization,
            filters: [
              {
                type: "CORS",
                allowOrigins: ["*"],
                allowMethods: ["GET"],
                allowHeaders: [],
                exposeHeaders: [],
                allowCredentials: false,
                maxAgeSeconds: 0,
              },
            ],
          }),
        ],
        [cluster("a", [a.port])],
        1,
        client ? { client } : {},
      ),
    );
  }

  it("answers 403 to a client outside the allow list, before CORS answers its preflight", async () => {
    const { port, px } = await serving(allowList("127.0.0.2/32"));
    const allowed = await get(port, "/", { localAddress: "127.0.0.2" });
    expect(allowed.status).to.equal(200);
    const denied = await get(port, "/", { localAddress: "127.0.0.3" });
    expect(denied.status).to.equal(403);
    expect(denied.body).to.contain("client address not allowed");
    const preflight = await get(port, "/", {
      method: "OPTIONS",
      localAddress: "127.0.0.3",
      headers: { origin: "https://x.example", "access-control-request-method": "GET" },
    });
    expect(preflight.status).to.equal(403);
    await px.close(100);
  });

  it("checks the client the trusted X-Forwarded-For hop names, not the proxy in front", async () => {
    const { port, px } = await serving(
      { defaultAction: "Allow", rules: [{ action: "Deny", cidrs: ["203.0.113.0/24"] }] },
      { trustedHops: 1 },
    );
    const from = async (xff: string) =>
      (await get(port, "/", { headers: { "x-forwarded-for": xff } })).status;
    expect(await from("203.0.113.9")).to.equal(403);
    expect(await from("198.51.100.1")).to.equal(200);
    // a client cannot talk its way in by prepending addresses: the trusted hop appended last
    expect(await from("198.51.100.1, 203.0.113.9")).to.equal(403);
    await px.close(100);
  });
});
