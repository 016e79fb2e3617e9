// The four built-in plugins, run as the proxy runs them (PluginInstance, real host functions):
// each case is a realistic request and the decision it must get. Tokens are signed here with
// node:crypto; the clock is the test host's. Ends with per-call costs (printed, not asserted).
import { expect } from "chai";
import crypto from "node:crypto";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { encodeInput } from "../../../proxy/plugins/abi.ts";
import type { Decision, Op, Pairs, PluginInput } from "../../../proxy/plugins/abi.ts";
import { Harness, TestHost, headerOf, plugins, request, text, withHeaders } from "./helpers.ts";

type Reject = Extract<Decision, { action: "reject" }>;

function rejected(d: Decision): Reject {
  if (d.action !== "reject") throw new Error(`expected a reject, got ${JSON.stringify(d)}`);
  return d;
}
function ops(d: Decision): Op[] {
  if (d.action !== "modify") throw new Error(`expected a modify, got ${JSON.stringify(d)}`);
  return d.ops;
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString("base64url");

describe("built-in plugins", function () {
  this.timeout(120_000);
  const open: Harness[] = [];
  async function start(name: string, config: unknown, host?: TestHost): Promise<Harness> {
    const h = await Harness.start(name, config, host);
    open.push(h);
    return h;
  }

  before(() => plugins());
  after(async () => {
    for (const h of open) await h.close();
  });

  describe("jwt-auth", () => {
    const secret = "a-shared-secret-of-at-least-32-bytes!";
    const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    const ecJwk = ec.publicKey.export({ format: "jwk" });
    const rsaJwk = rsa.publicKey.export({ format: "jwk" });
    const host = new TestHost();
    const now = Math.floor(host.clock / 1000);

    type Alg = "HS256" | "RS256" | "ES256" | "none";
    function sign(
      alg: Alg,
      payload: Record<string, unknown>,
      header: Record<string, unknown> = {},
      hmacKey: crypto.BinaryLike = secret,
    ): string {
      const input = `${b64u(JSON.stringify({ alg, typ: "JWT", ...header }))}.${b64u(JSON.stringify(payload))}`;
      let sig: Buffer;
      if (alg === "HS256") sig = crypto.createHmac("sha256", hmacKey).update(input).digest();
      else if (alg === "RS256") sig = crypto.sign("sha256", Buffer.from(input), rsa.privateKey);
      else if (alg === "ES256")
        sig = crypto.sign("sha256", Buffer.from(input), {
          key: ec.privateKey,
          dsaEncoding: "ieee-p1363",
        });
      else sig = Buffer.alloc(0);
      return `${input}.${b64u(sig)}`;
    }
    const claims = (over: Record<string, unknown> = {}) => ({
      iss: "https://issuer.example.com",
      sub: "user-42",
      aud: "orders-api",
      iat: now - 10,
      exp: now + 300,
      roles: ["reader", "writer"],
      tier: 3,
      ...over,
    });
    const bearer = (token: string, over: Partial<PluginInput> = {}) =>
      withHeaders([["authorization", `Bearer ${token}`]], over);

    const config = {
      keys: [
        { kid: "hs", alg: "HS256", secret },
        { kid: "rsa-1", alg: "RS256", pem: rsaPem },
        { kid: "ec-1", alg: "ES256", jwk: ecJwk },
      ],
      issuer: "https://issuer.example.com",
      audiences: ["orders-api"],
      claimsToHeaders: [
        { claim: "sub", header: "X-User-Id" },
        { claim: "roles", header: "x-roles" },
        { claim: "email", header: "x-email" },
      ],
      claimsToMetadata: ["tier"],
      realm: "orders",
    };
    let jwt: Harness;
    before(async () => {
      jwt = await start("jwt-auth", config, host);
    });

    /** The 401 for a token, with what every refusal must hold. */
    async function refusal(
      input: PluginInput,
      token?: string,
    ): Promise<{ description: string; challenge: string; body: unknown }> {
      const r = rejected(await jwt.decide(input));
      expect(r.status).to.equal(401);
      const challenge = headerOf(r.headers, "www-authenticate") ?? "";
      const body = text(r.body);
      expect(headerOf(r.headers, "content-type")).to.equal("application/json");
      if (token !== undefined) {
        // never echoed, not even a segment of it
        for (const part of token.split(".").filter(p => p.length > 8)) {
          expect(body).not.to.contain(part);
          expect(challenge).not.to.contain(part);
        }
      }
      const parsed = JSON.parse(body) as { error: string; error_description: string };
      return { description: parsed.error_description, challenge, body: parsed };
    }

    for (const [alg, kid] of [
      ["HS256", "hs"],
      ["RS256", "rsa-1"],
      ["ES256", "ec-1"],
    ] as const) {
      it(`accepts a valid ${alg} token and passes its claims on`, async () => {
        const d = await jwt.decide(bearer(sign(alg, claims(), { kid })));
        expect(ops(d)).to.deep.equal([
          { op: "setRequestHeader", name: "x-user-id", value: "user-42" },
          { op: "setRequestHeader", name: "x-roles", value: "reader,writer" },
          // the token has no email: a client-sent x-email must not reach the upstream
          { op: "removeRequestHeader", name: "x-email" },
          { op: "setMetadata", key: "jwt.sub", value: "user-42" },
          { op: "setMetadata", key: "jwt.iss", value: "https://issuer.example.com" },
          { op: "setMetadata", key: "jwt.tier", value: "3" },
        ]);
      });
    }

    it("accepts a token without kid with whichever key of its alg verifies it", async () => {
      expect(ops(await jwt.decide(bearer(sign("RS256", claims()))))).to.have.length(6);
    });

    it("picks the key by kid in a JWKS (RSA and EC members)", async () => {
      const other = crypto
        .generateKeyPairSync("rsa", { modulusLength: 2048 })
        .publicKey.export({ format: "jwk" });
      const h = await start("jwt-auth", {
        jwks: {
          keys: [
            { ...other, kid: "old", use: "sig", alg: "RS256" },
            { ...rsaJwk, kid: "current", use: "sig", alg: "RS256" },
            { ...ecJwk, kid: "ec" },
            { kty: "RSA", kid: "enc", use: "enc", n: rsaJwk.n, e: rsaJwk.e },
          ],
        },
      });
      expect(
        ops(await h.decide(bearer(sign("RS256", claims(), { kid: "current" })))),
      ).to.deep.include({
        op: "setMetadata",
        key: "jwt.sub",
        value: "user-42",
      });
      expect(ops(await h.decide(bearer(sign("ES256", claims(), { kid: "ec" }))))).to.have.length(2);
      const wrong = rejected(await h.decide(bearer(sign("RS256", claims(), { kid: "old" }))));
      expect(wrong.status).to.equal(401);
      expect(h.host.logs.map(l => l.message).join("\n")).to.contain("skipping jwks.keys[3]");
    });

    it("refuses a request without a token: a challenge with no error code (RFC 6750 §3.1)", async () => {
      const r = await refusal(request());
      expect(r.challenge).to.equal('Bearer realm="orders"');
      expect(r.body).to.deep.equal({
        error: "missing_token",
        error_description: "no bearer token",
      });
    });

    it("treats Authorization with another scheme as no token", async () => {
      const r = await refusal(withHeaders([["authorization", "Basic dXNlcjpwYXNz"]]));
      expect(r.challenge).to.equal('Bearer realm="orders"');
    });

    const invalid: Array<[string, () => string, string]> = [
      [
        "an expired token",
        () => sign("HS256", claims({ exp: now - 61 }), { kid: "hs" }),
        "token expired",
      ],
      [
        "a token not valid yet (nbf)",
        () => sign("HS256", claims({ nbf: now + 120 }), { kid: "hs" }),
        "token not yet valid",
      ],
      [
        "a token issued in the future (iat)",
        () => sign("HS256", claims({ iat: now + 120 }), { kid: "hs" }),
        "token issued in the future",
      ],
      [
        "a token without exp",
        () => sign("HS256", claims({ exp: undefined }), { kid: "hs" }),
        "token has no exp",
      ],
      [
        "a token with a string exp",
        () => sign("HS256", claims({ exp: String(now + 300) }), { kid: "hs" }),
        "malformed exp",
      ],
      [
        "a wrong issuer",
        () => sign("HS256", claims({ iss: "https://evil.example.com" }), { kid: "hs" }),
        "issuer not allowed",
      ],
      [
        "a wrong audience",
        () => sign("HS256", claims({ aud: "billing-api" }), { kid: "hs" }),
        "audience not allowed",
      ],
      [
        "no audience",
        () => sign("HS256", claims({ aud: undefined }), { kid: "hs" }),
        "audience not allowed",
      ],
      [
        "a bad HS256 signature",
        () => sign("HS256", claims(), { kid: "hs" }, "another-secret"),
        "invalid signature",
      ],
      [
        "a payload changed after signing",
        () => {
          const [h, , s] = sign("RS256", claims(), { kid: "rsa-1" }).split(".");
          return `${h}.${b64u(JSON.stringify(claims({ sub: "admin" })))}.${s}`;
        },
        "invalid signature",
      ],
      [
        "an ES256 signature one byte short",
        () => {
          const [h, p, s] = sign("ES256", claims(), { kid: "ec-1" }).split(".");
          return `${h}.${p}.${b64u(Buffer.from(s!, "base64url").subarray(1))}`;
        },
        "invalid signature",
      ],
      // 43 + 2 characters: a length of 4n+1 is no base64url at all
      [
        "a signature that is not base64url",
        () => `${sign("HS256", claims(), { kid: "hs" })}AA`,
        "malformed signature",
      ],
      ["alg none", () => sign("none", claims()), "unsigned tokens are not accepted"],
      [
        "alg none with a signature",
        () => `${sign("none", claims())}c2ln`,
        "unsigned tokens are not accepted",
      ],
      [
        "an HS256 token signed with the RSA public key (algorithm confusion)",
        () => sign("HS256", claims(), { kid: "rsa-1" }, rsaPem),
        "no key for alg HS256",
      ],
      [
        "an ES256 header on an RS256 key's kid",
        () => sign("ES256", claims(), { kid: "rsa-1" }),
        "no key for alg ES256",
      ],
      ["an unknown kid", () => sign("HS256", claims(), { kid: "retired" }), "unknown kid"],
      [
        "an unsupported alg",
        () => sign("HS256", claims(), { alg: "PS256", kid: "hs" }),
        "unsupported alg",
      ],
      [
        "a crit header",
        () => sign("HS256", claims(), { kid: "hs", crit: ["exp"] }),
        "unsupported critical header parameter",
      ],
      [
        "a JWE (five segments)",
        () => "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
        "encrypted tokens (JWE) are not supported",
      ],
      ["two segments", () => "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", "malformed token"],
      ["characters outside base64url", () => "eyJhbGciOiJIUzI1NiJ9.e+y.abc", "malformed token"],
      [
        "a header that is not JSON",
        () => `${b64u("{alg:HS256}")}.${b64u("{}")}.${b64u("sig")}`,
        "malformed token header",
      ],
    ];
    for (const [what, make, description] of invalid) {
      it(`refuses ${what}: 401 invalid_token "${description}"`, async () => {
        const token = make();
        const r = await refusal(bearer(token), token);
        expect(r.description).to.equal(description);
        expect(r.challenge).to.equal(
          `Bearer realm="orders", error="invalid_token", error_description="${description}"`,
        );
        expect(r.body).to.deep.equal({ error: "invalid_token", error_description: description });
      });
    }

    it("allows clockSkewSeconds of leeway on exp (default 60 s)", async () => {
      expect(
        ops(await jwt.decide(bearer(sign("HS256", claims({ exp: now - 30 }), { kid: "hs" })))),
      ).to.have.length(6);
    });

    it("accepts an aud list that contains an allowed audience", async () => {
      const d = await jwt.decide(
        bearer(sign("HS256", claims({ aud: ["other", "orders-api"] }), { kid: "hs" })),
      );
      expect(d.action).to.equal("modify");
    });

    it("reads the token from a query parameter or a cookie, and can strip it before upstream", async () => {
      const h = await start("jwt-auth", {
        keys: [{ alg: "HS256", secret }],
        queryParam: "access_token",
        cookie: "session",
        forwardToken: false,
      });
      const token = sign("HS256", claims());
      expect(
        ops(await h.decide(request({ query: `a=1&access_token=${token}&b=2` }))),
      ).to.deep.equal([
        { op: "setMetadata", key: "jwt.sub", value: "user-42" },
        { op: "setMetadata", key: "jwt.iss", value: "https://issuer.example.com" },
        { op: "setQuery", query: "a=1&b=2" },
      ]);
      expect(
        ops(await h.decide(withHeaders([["cookie", `theme=dark; session=${token}; lang=fi`]]))),
      ).to.deep.include({
        op: "setRequestHeader",
        name: "cookie",
        value: "theme=dark; lang=fi",
      });
      expect(ops(await h.decide(withHeaders([["cookie", `session="${token}"`]])))).to.deep.include({
        op: "removeRequestHeader",
        name: "cookie",
      });
      expect(ops(await h.decide(bearer(token)))).to.deep.include({
        op: "removeRequestHeader",
        name: "authorization",
      });
    });

    it("takes a bare token from a custom header, keyed by secretBase64", async () => {
      const raw = crypto.randomBytes(32);
      const h = await start("jwt-auth", {
        keys: [{ alg: "HS256", secretBase64: raw.toString("base64") }],
        header: "X-Api-Token",
        requireExpiration: false,
      });
      const token = sign("HS256", { sub: "svc" }, {}, raw);
      expect(ops(await h.decide(withHeaders([["x-api-token", token]])))).to.deep.equal([
        { op: "setMetadata", key: "jwt.sub", value: "svc" },
      ]);
    });

    it("drops a claim header whose value holds a line break, instead of failing the request", async () => {
      const d = await jwt.decide(
        bearer(sign("HS256", claims({ sub: "x\r\nx-admin: true" }), { kid: "hs" })),
      );
      expect(ops(d)).to.deep.include({ op: "removeRequestHeader", name: "x-user-id" });
      expect(jwt.host.logs.map(l => l.message).join("\n")).to.contain(
        "claim sub holds CR, LF or NUL",
      );
    });

    it("escapes the realm in the challenge", async () => {
      const h = await start("jwt-auth", { keys: [{ alg: "HS256", secret }], realm: 'my "api"' });
      const r = rejected(await h.decide(request()));
      expect(headerOf(r.headers, "www-authenticate")).to.equal('Bearer realm="my \\"api\\""');
    });

    it("fails every call when the config has no usable key", async () => {
      const h = await start("jwt-auth", {
        keys: [{ alg: "RS256", jwk: { kty: "EC", crv: "P-256", x: "a", y: "b" } }],
      });
      const f = await h.failure(bearer("x.y.z"));
      expect(f.message).to.contain("keys[0].jwk is not a RS256 signing key");
    });

    describe("verified-token cache (verifiedTokenCacheSeconds)", () => {
      /** A host whose cache counts the lookups that found something. */
      function countingHost(): TestHost & { hits: number } {
        const h = Object.assign(new TestHost(), { hits: 0 });
        const get = h.cache.get.bind(h.cache);
        h.cache.get = (key, nowMs) => {
          const v = get(key, nowMs);
          if (v !== null) h.hits++;
          return v;
        };
        return h;
      }
      const cfg = { ...config, verifiedTokenCacheSeconds: 120 };

      it("replays what a verified token yields for the same token, with the same decision", async () => {
        const host = countingHost();
        const h = await start("jwt-auth", cfg, host);
        const token = sign("RS256", claims(), { kid: "rsa-1" });
        const first = await h.decide(bearer(token));
        expect(host.cache.size).to.equal(1);
        const again = await h.decide(bearer(token));
        expect(host.hits).to.equal(1);
        expect(again).to.deep.equal(first);
        expect(ops(again)).to.have.length(6);
      });

      it("answers a header token's repeat as its first answer, however the scheme and spaces are spelled", async () => {
        const host = countingHost();
        const h = await start("jwt-auth", cfg, host);
        const token = sign("HS256", claims(), { kid: "hs" });
        const first = await h.decide(bearer(token));
        for (const value of [`bearer ${token}`, `  BEARER \t ${token} `, `Bearer ${token}`])
          expect(await h.decide(withHeaders([["authorization", value]]))).to.deep.equal(first);
        expect(host.hits).to.equal(3);
        // not a bearer token: refused, cache or not
        const basic = await h.decide(withHeaders([["authorization", `Basic ${token}`]]));
        expect(basic.action).to.equal("reject");
      });

      it("from the query or a cookie, a cached token still gets this request's own decision", async () => {
        const host = countingHost();
        const h = await start(
          "jwt-auth",
          {
            keys: [{ alg: "HS256", secret }],
            queryParam: "access_token",
            cookie: "session",
            verifiedTokenCacheSeconds: 60,
            forwardToken: false,
          },
          host,
        );
        const token = sign("HS256", claims());
        const q = (query: string) => h.decide(request({ query }));
        expect(ops(await q(`a=1&access_token=${token}`)).at(-1)).to.deep.equal({
          op: "setQuery",
          query: "a=1",
        });
        expect(ops(await q(`access_token=${token}&z=9`)).at(-1)).to.deep.equal({
          op: "setQuery",
          query: "z=9",
        });
        const c = await h.decide(withHeaders([["cookie", `session=${token}; lang=fi`]]));
        expect(ops(c).at(-1)).to.deep.equal({
          op: "setRequestHeader",
          name: "cookie",
          value: "lang=fi",
        });
        expect(host.hits).to.equal(2);
        expect(host.cache.size).to.equal(1);
      });

      it("never past the token's exp + clockSkewSeconds, nor past verifiedTokenCacheSeconds", async () => {
        const host = countingHost();
        const h = await start("jwt-auth", cfg, host);
        const t0 = host.clock;
        // exp in 30 s + 60 s skew: the entry lives 90 s, under the configured 120
        const short = sign("HS256", claims({ exp: Math.floor(t0 / 1000) + 30 }), { kid: "hs" });
        expect((await h.decide(bearer(short))).action).to.equal("modify");
        host.clock = t0 + 89_000;
        expect((await h.decide(bearer(short))).action).to.equal("modify");
        expect(host.hits).to.equal(1);
        host.clock = t0 + 91_000;
        const r = rejected(await h.decide(bearer(short)));
        expect(JSON.parse(text(r.body))).to.include({ error_description: "token expired" });
        // a long-lived token is verified again after verifiedTokenCacheSeconds
        host.clock = t0;
        const long = sign("HS256", claims({ exp: Math.floor(t0 / 1000) + 86_400 }), { kid: "hs" });
        await h.decide(bearer(long));
        host.clock = t0 + 121_000;
        const hits = host.hits;
        expect((await h.decide(bearer(long))).action).to.equal("modify");
        expect(host.hits).to.equal(hits);
      });

      it("keeps no refusal, and nothing at all with verifiedTokenCacheSeconds 0", async () => {
        const host = countingHost();
        const h = await start("jwt-auth", cfg, host);
        const forged = sign("HS256", claims(), { kid: "hs" }, "not-the-secret-not-the-secret!!");
        for (let i = 0; i < 2; i++)
          expect((await h.decide(bearer(forged))).action).to.equal("reject");
        expect(host.cache.size).to.equal(0);
        const off = countingHost();
        const h0 = await start("jwt-auth", { ...config, verifiedTokenCacheSeconds: 0 }, off);
        const token = sign("HS256", claims(), { kid: "hs" });
        for (let i = 0; i < 2; i++)
          expect((await h0.decide(bearer(token))).action).to.equal("modify");
        expect(off.cache.size).to.equal(0);
      });
    });
  });

  describe("cors", () => {
    const preflight = (origin: string, method = "PUT", headers?: string) =>
      withHeaders(
        [
          ["origin", origin],
          ["access-control-request-method", method],
          ...(headers === undefined
            ? []
            : ([["access-control-request-headers", headers]] as Pairs)),
        ],
        { method: "OPTIONS" },
      );
    const actual = (origin: string, over: Partial<PluginInput> = {}) =>
      withHeaders([["origin", origin]], over);
    let cors: Harness;
    before(async () => {
      cors = await start("cors", {
        allowOrigins: ["https://app.example.com", "https://*.example.org"],
        allowMethods: ["GET", "PUT", "DELETE"],
        allowHeaders: ["Content-Type", "X-Request-Id"],
        exposeHeaders: ["X-Total-Count", "ETag"],
        maxAgeSeconds: 600,
      });
    });

    it("answers an allowed preflight with 204 and the allow-lists", async () => {
      const r = rejected(
        await cors.decide(
          preflight("https://app.example.com", "PUT", "content-type, x-request-id"),
        ),
      );
      expect(r.status).to.equal(204);
      expect(r.headers).to.deep.equal([
        ["access-control-allow-origin", "https://app.example.com"],
        ["access-control-allow-methods", "GET,PUT,DELETE"],
        ["access-control-allow-headers", "content-type,x-request-id"],
        ["access-control-max-age", "600"],
        ["vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"],
      ]);
      expect(r.body).to.have.length(0);
    });

    for (const [what, input, why] of [
      ["an origin not on the list", preflight("https://evil.example.net"), "origin not allowed"],
      [
        "a method not on the list",
        preflight("https://app.example.com", "PATCH"),
        "method not allowed",
      ],
      [
        "a header not on the list",
        preflight("https://app.example.com", "PUT", "content-type, x-secret"),
        "header x-secret not allowed",
      ],
    ] as const) {
      it(`refuses a preflight with ${what}: 403, no allow headers`, async () => {
        const r = rejected(await cors.decide(input));
        expect(r.status).to.equal(403);
        expect(text(r.body)).to.equal(`CORS preflight refused: ${why}\n`);
        expect(r.headers.map(([k]) => k)).not.to.include("access-control-allow-origin");
      });
    }

    it("allows the safelisted methods whatever allowMethods says", async () => {
      expect(
        rejected(await cors.decide(preflight("https://app.example.com", "POST"))).status,
      ).to.equal(204);
    });

    it("matches wildcard origins on host labels only", async () => {
      for (const o of [
        "https://api.example.org",
        "https://a.b.example.org",
        "HTTPS://API.EXAMPLE.ORG",
      ])
        expect(rejected(await cors.decide(preflight(o))).status, o).to.equal(204);
      for (const o of [
        "https://example.org",
        "https://.example.org",
        "http://api.example.org",
        "https://api.example.org:8443",
        "https://api.example.org.evil.net",
        "https://evil.net/.example.org",
        "https://user@x.example.org",
        "https://apiexample.org",
      ])
        expect(rejected(await cors.decide(preflight(o))).status, o).to.equal(403);
    });

    it("adds the allowance to an allowed actual request's response, and Vary: Origin (added, not set)", async () => {
      expect(
        ops(await cors.decide(actual("https://app.example.com", { method: "DELETE" }))),
      ).to.deep.equal([
        { op: "addResponseHeader", name: "vary", value: "Origin" },
        {
          op: "setResponseHeader",
          name: "access-control-allow-origin",
          value: "https://app.example.com",
        },
        {
          op: "setResponseHeader",
          name: "access-control-expose-headers",
          value: "X-Total-Count,ETag",
        },
      ]);
    });

    it("strips an upstream's allowance for an origin not on the list", async () => {
      expect(ops(await cors.decide(actual("https://evil.example.net")))).to.deep.equal([
        { op: "addResponseHeader", name: "vary", value: "Origin" },
        { op: "removeResponseHeader", name: "access-control-allow-origin" },
        { op: "removeResponseHeader", name: "access-control-allow-credentials" },
      ]);
    });

    it("only adds Vary to a request without Origin", async () => {
      expect(ops(await cors.decide(request()))).to.deep.equal([
        { op: "addResponseHeader", name: "vary", value: "Origin" },
      ]);
    });

    it("treats OPTIONS without Access-Control-Request-Method as an actual request", async () => {
      expect(
        (await cors.decide(actual("https://app.example.com", { method: "OPTIONS" }))).action,
      ).to.equal("modify");
    });

    it("answers * for any origin without credentials, and nothing varies", async () => {
      const h = await start("cors", { allowOrigins: ["*"] });
      const r = rejected(await h.decide(preflight("https://anyone.test", "GET")));
      expect(headerOf(r.headers, "access-control-allow-origin")).to.equal("*");
      expect(headerOf(r.headers, "access-control-allow-methods")).to.equal(
        "GET,HEAD,POST,PUT,PATCH,DELETE",
      );
      expect(ops(await h.decide(actual("https://anyone.test")))).to.deep.equal([
        { op: "setResponseHeader", name: "access-control-allow-origin", value: "*" },
      ]);
      expect((await h.decide(request())).action).to.equal("continue");
    });

    it("with credentials echoes the origin instead of *, and allowHeaders * echoes the request's", async () => {
      const h = await start("cors", {
        allowOrigins: ["*"],
        allowCredentials: true,
        allowHeaders: ["*"],
      });
      const r = rejected(
        await h.decide(preflight("https://anyone.test", "PUT", "x-custom, authorization")),
      );
      expect(headerOf(r.headers, "access-control-allow-origin")).to.equal("https://anyone.test");
      expect(headerOf(r.headers, "access-control-allow-credentials")).to.equal("true");
      expect(headerOf(r.headers, "access-control-allow-headers")).to.equal(
        "x-custom, authorization",
      );
      expect(ops(await h.decide(actual("https://anyone.test")))).to.deep.equal([
        { op: "addResponseHeader", name: "vary", value: "Origin" },
        {
          op: "setResponseHeader",
          name: "access-control-allow-origin",
          value: "https://anyone.test",
        },
        { op: "setResponseHeader", name: "access-control-allow-credentials", value: "true" },
      ]);
      expect(h.host.logs.map(l => l.message).join("\n")).to.contain(
        "every origin may send credentialed requests",
      );
    });

    it("fails every call on a malformed wildcard", async () => {
      const h = await start("cors", { allowOrigins: ["https://api.*.example.com"] });
      expect((await h.failure(request())).message).to.contain(
        "a wildcard origin looks like https://*.example.com",
      );
    });
  });

  describe("rate-limit", () => {
    const retryAfter = (d: Decision) => headerOf(rejected(d).headers, "retry-after");

    it("lets a burst through, then answers 429 with Retry-After and RateLimit-* until a token is back", async () => {
      const host = new TestHost();
      const h = await start("rate-limit", { requestsPerSecond: 1, burst: 3 }, host);
      for (const remaining of ["2", "1", "0"]) {
        expect(ops(await h.decide(request()))).to.deep.equal([
          { op: "setResponseHeader", name: "ratelimit-limit", value: "3" },
          { op: "setResponseHeader", name: "ratelimit-remaining", value: remaining },
          {
            op: "setResponseHeader",
            name: "ratelimit-reset",
            value: String(3 - Number(remaining)),
          },
        ]);
      }
      const r = rejected(await h.decide(request()));
      expect(r.status).to.equal(429);
      expect(r.headers).to.deep.equal([
        ["retry-after", "1"],
        ["ratelimit-limit", "3"],
        ["ratelimit-remaining", "0"],
        ["ratelimit-reset", "1"],
        ["content-type", "application/json"],
      ]);
      expect(JSON.parse(text(r.body))).to.deep.equal({ error: "rate limit exceeded" });
      host.clock += 400;
      expect(rejected(await h.decide(request())).status).to.equal(429);
      host.clock += 600;
      expect((await h.decide(request())).action).to.equal("modify");
    });

    it("Retry-After is whole seconds, at least 1", async () => {
      const host = new TestHost();
      const slow = await start("rate-limit", { requestsPerSecond: 0.1 }, host);
      await slow.decide(request());
      expect(retryAfter(await slow.decide(request()))).to.equal("10");
      const fast = await start("rate-limit", { requestsPerSecond: 50, burst: 1 }, host);
      await fast.decide(request());
      expect(retryAfter(await fast.decide(request()))).to.equal("1");
    });

    it("keys by a header: each value has its own bucket; without it, the client address", async () => {
      const h = await start("rate-limit", {
        requestsPerSecond: 1,
        burst: 1,
        key: "header:X-Api-Key",
        headers: false,
      });
      const k = (key: string, client = "203.0.113.7") =>
        withHeaders([["x-api-key", key]], { client });
      expect((await h.decide(k("alice"))).action).to.equal("continue");
      expect(rejected(await h.decide(k("alice"))).status).to.equal(429);
      expect((await h.decide(k("bob"))).action).to.equal("continue");
      expect(rejected(await h.decide(k("bob", "198.51.100.1"))).status).to.equal(429);
      // no header: keyed by client; a header value that looks like that address is another bucket
      expect((await h.decide(request({ client: "198.51.100.9" }))).action).to.equal("continue");
      expect(rejected(await h.decide(request({ client: "198.51.100.9" }))).status).to.equal(429);
      expect((await h.decide(k("198.51.100.9"))).action).to.equal("continue");
    });

    it("keys by client by default and by route on request", async () => {
      const byClient = await start("rate-limit", {
        requestsPerSecond: 1,
        burst: 1,
        headers: false,
      });
      expect((await byClient.decide(request({ client: "10.0.0.1" }))).action).to.equal("continue");
      expect((await byClient.decide(request({ client: "10.0.0.2" }))).action).to.equal("continue");
      expect(
        rejected(
          await byClient.decide(request({ client: "10.0.0.1", route: "default/other/rule/0" })),
        ).status,
      ).to.equal(429);
      const byRoute = await start("rate-limit", {
        requestsPerSecond: 1,
        burst: 1,
        key: "route",
        headers: false,
      });
      expect((await byRoute.decide(request({ client: "10.0.0.1" }))).action).to.equal("continue");
      expect(rejected(await byRoute.decide(request({ client: "10.0.0.2" }))).status).to.equal(429);
      expect((await byRoute.decide(request({ route: "default/other/rule/0" }))).action).to.equal(
        "continue",
      );
    });

    it("keys by metadata an earlier plugin set (jwt.sub)", async () => {
      const h = await start("rate-limit", {
        requestsPerSecond: 1,
        burst: 1,
        key: "metadata:jwt.sub",
        headers: false,
      });
      const as = (sub: string) => request({ metadata: [["jwt.sub", sub]] });
      expect((await h.decide(as("alice"))).action).to.equal("continue");
      expect(rejected(await h.decide(as("alice"))).status).to.equal(429);
      expect((await h.decide(as("bob"))).action).to.equal("continue");
    });

    it("burst defaults to requestsPerSecond rounded up", async () => {
      const h = await start("rate-limit", { requestsPerSecond: 2.5 });
      expect(ops(await h.decide(request()))[0]).to.deep.equal({
        op: "setResponseHeader",
        name: "ratelimit-limit",
        value: "3",
      });
    });

    it("fails every call on a config without a rate", async () => {
      const h = await start("rate-limit", { requestsPerSecond: 0 });
      expect((await h.failure(request())).message).to.contain(
        "requestsPerSecond must be a number > 0",
      );
    });
  });

  describe("request-transformer", () => {
    it("applies every header op in order: remove, rename, set, add", async () => {
      const h = await start("request-transformer", {
        remove: ["X-Debug", "cookie"],
        rename: [
          { from: "X-Old", to: "X-New" },
          { from: "x-absent", to: "x-never" },
        ],
        set: [{ name: "X-Env", value: "prod" }],
        add: [
          { name: "x-tag", value: "a" },
          { name: "x-tag", value: "b" },
        ],
      });
      const d = await h.decide(
        withHeaders([
          ["x-old", "1"],
          ["x-debug", "yes"],
          ["x-old", "2"],
        ]),
      );
      expect(ops(d)).to.deep.equal([
        { op: "removeRequestHeader", name: "x-debug" },
        { op: "removeRequestHeader", name: "cookie" },
        { op: "removeRequestHeader", name: "x-old" },
        { op: "removeRequestHeader", name: "x-new" },
        { op: "addRequestHeader", name: "x-new", value: "1" },
        { op: "addRequestHeader", name: "x-new", value: "2" },
        { op: "setRequestHeader", name: "x-env", value: "prod" },
        { op: "addRequestHeader", name: "x-tag", value: "a" },
        { op: "addRequestHeader", name: "x-tag", value: "b" },
      ]);
    });

    it("rewrites the path with $n captures when the pattern matches all of it", async () => {
      const h = await start("request-transformer", {
        path: { pattern: "^/api/v1/([^/]+)/(.*)$", replacement: "/v2/$1/items/$2" },
      });
      expect(ops(await h.decide(request({ path: "/api/v1/users/42/orders" })))).to.deep.equal([
        { op: "setPath", path: "/v2/users/items/42/orders" },
      ]);
      expect(ops(await h.decide(request({ path: "/api/v1/users/" })))).to.deep.equal([
        { op: "setPath", path: "/v2/users/items/" },
      ]);
      for (const path of ["/api/v1/users", "/api/v1//x", "/api/v2/users/1", "/xapi/v1/users/1"])
        expect((await h.decide(request({ path }))).action, path).to.equal("continue");
    });

    it("supports ([^/]*), (.+), escapes and $$", async () => {
      const h = await start("request-transformer", {
        path: { pattern: "/files\\.d/([^/]*)/(.+)", replacement: "/$$/$2/$1" },
      });
      expect(ops(await h.decide(request({ path: "/files.d//a/b" })))).to.deep.equal([
        { op: "setPath", path: "/$/a/b/" },
      ]);
      expect((await h.decide(request({ path: "/filesXd/a/b" }))).action).to.equal("continue");
      expect((await h.decide(request({ path: "/files.d/a/" }))).action).to.equal("continue");
    });

    it("matches a long path in linear time", async () => {
      const h = await start("request-transformer", {
        path: { pattern: "/([^/]+)/([^/]+)/(.*)", replacement: "/$3" },
      });
      const path = `/${"a".repeat(20_000)}/${"b/".repeat(5_000)}`;
      const t0 = performance.now();
      expect(ops(await h.decide(request({ path })))).to.deep.equal([
        { op: "setPath", path: `/${"b/".repeat(4_999)}` },
      ]);
      expect(performance.now() - t0).to.be.below(200);
    });

    it("appends query parameters percent-encoded and removes others by name", async () => {
      const h = await start("request-transformer", {
        removeQuery: ["debug", "api key"],
        addQuery: [
          { name: "source", value: "rauta gw" },
          { name: "é", value: "a&b=c" },
        ],
      });
      expect(
        ops(await h.decide(request({ query: "debug=1&page=2&api+key=x&debug" }))),
      ).to.deep.equal([{ op: "setQuery", query: "page=2&source=rauta%20gw&%C3%A9=a%26b%3Dc" }]);
      expect(ops(await h.decide(request({ query: "" })))).to.deep.equal([
        { op: "setQuery", query: "source=rauta%20gw&%C3%A9=a%26b%3Dc" },
      ]);
    });

    it("answers CONTINUE when nothing applies", async () => {
      const h = await start("request-transformer", {
        removeQuery: ["x"],
        path: { pattern: "/old", replacement: "/new" },
      });
      expect(await h.decide(request({ path: "/other", query: "a=1" }))).to.deep.equal({
        action: "continue",
      });
    });

    const unsupported: Array<[string, string]> = [
      ["(a|b)", "the only groups supported are"],
      ["/x|/y", "'|' is not supported"],
      ["/a.b", "'.' is not supported"],
      ["/(.*)/tail", "(.+) and (.*) must end the pattern"],
      ["/([^/]+)x", "must be followed by / or the end"],
      ["/a+", "'+' is not supported"],
      ["/\\d", "only \\ before one of"],
      ["/$/x", "$ is only supported at the end"],
    ];
    for (const [pattern, why] of unsupported) {
      it(`refuses the pattern ${pattern} (schema and plugin agree)`, async () => {
        const h = await start("request-transformer", { path: { pattern, replacement: "/x" } });
        const f = await h.failure(request());
        expect(f.message).to.contain(why);
        expect(h.host.logs.at(-1)?.message).to.contain(why);
        expect(schemaPattern().test(pattern), pattern).to.equal(false);
      });
    }

    it("accepts in the schema what the plugin supports", () => {
      for (const p of [
        "^/api/v1/([^/]+)/(.*)$",
        "/files\\.d/([^/]*)/(.+)",
        "/old",
        "/([^/]+)",
        "/a/(.*)",
        "/\\(x\\)",
      ])
        expect(schemaPattern().test(p), p).to.equal(true);
    });

    it("refuses a replacement that names a missing group", async () => {
      const h = await start("request-transformer", {
        path: { pattern: "/([^/]+)", replacement: "/$2" },
      });
      expect((await h.failure(request())).message).to.contain(
        "$2 refers to a group the pattern does not have",
      );
    });
  });

  describe("schemas", () => {
    const dir = fileURLToPath(new URL("../../../plugins-sdk/builtins/", import.meta.url));
    for (const name of ["jwt-auth", "cors", "rate-limit", "request-transformer"]) {
      it(`${name}: draft 2020-12, closed objects, every property described`, () => {
        const schema = JSON.parse(fs.readFileSync(`${dir}${name}/schema.json`, "utf8")) as Record<
          string,
          unknown
        >;
        expect(schema.$schema).to.equal("https://json-schema.org/draft/2020-12/schema");
        const walk = (s: unknown, where: string): void => {
          if (typeof s !== "object" || s === null) return;
          const o = s as Record<string, unknown>;
          if (o.type === "object" && o.properties !== undefined) {
            expect(o.additionalProperties, `${where}.additionalProperties`).to.equal(false);
            for (const [k, v] of Object.entries(
              o.properties as Record<string, Record<string, unknown>>,
            )) {
              expect(typeof v.description, `${where}.${k} has a description`).to.equal("string");
            }
          }
          for (const [k, v] of Object.entries(o)) walk(v, `${where}.${k}`);
        };
        walk(schema, name);
      });
    }
  });

  describe("cost per call", () => {
    async function perCall(h: Harness, input: PluginInput, n: number): Promise<number> {
      const bytes = encodeInput(input);
      for (let i = 0; i < 500; i++) await h.call(input.phase, bytes);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const res = await h.call(input.phase, bytes);
        if (!res.ok) throw new Error(res.message);
      }
      return ((performance.now() - t0) * 1000) / n;
    }

    it("no-op AssemblyScript plugin and jwt-auth HS256, 20k calls each (printed, not asserted)", async () => {
      const noop = await start("sdk-noop", null);
      const host = new TestHost();
      const jwt = await start(
        "jwt-auth",
        {
          keys: [{ alg: "HS256", secret: "bench-secret" }],
          claimsToHeaders: [{ claim: "sub", header: "x-user" }],
        },
        host,
      );
      const now = Math.floor(host.clock / 1000);
      const input = `${b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64u(JSON.stringify({ sub: "user-42", iat: now, exp: now + 3600 }))}`;
      const token = `${input}.${b64u(crypto.createHmac("sha256", "bench-secret").update(input).digest())}`;
      const req = withHeaders([["authorization", `Bearer ${token}`]]);
      expect((await jwt.decide(req)).action).to.equal("modify");
      const a = await perCall(noop, request(), 20_000);
      const b = await perCall(jwt, req, 20_000);
      console.log(
        `      no-op: ${a.toFixed(2)} µs/call; jwt-auth HS256: ${b.toFixed(2)} µs/call (PluginInstance.call, input pre-encoded)`,
      );
      expect(noop.memoryBytes()).to.be.below(1 << 20);
      expect(jwt.memoryBytes()).to.be.below(1 << 20);
    });
  });
});

let compiledPattern: RegExp | null = null;
/** The request-transformer schema's own pattern for path.pattern, as ECMA-262 (JSON Schema's dialect). */
function schemaPattern(): RegExp {
  if (compiledPattern !== null) return compiledPattern;
  const schema = JSON.parse(
    fs.readFileSync(
      fileURLToPath(
        new URL("../../../plugins-sdk/builtins/request-transformer/schema.json", import.meta.url),
      ),
      "utf8",
    ),
  ) as { properties: { path: { properties: { pattern: { pattern: string } } } } };
  compiledPattern = new RegExp(schema.properties.path.properties.pattern.pattern, "u");
  return compiledPattern;
}
