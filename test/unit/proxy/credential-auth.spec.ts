// Basic auth (htpasswd users from a Secret) and API keys (client id → key from Secrets), a
// SecurityPolicy's basicAuth and apiKeyAuth: the hashes htpasswd writes, 401 with a challenge,
// the user or client forwarded, the key removed, a rotated Secret applied without a new config,
// and 500 (never a way in) while a Secret is missing.
import { execFileSync } from "node:child_process";
import { expect } from "chai";
import bcrypt from "bcryptjs";
import type { ApiKeyAuth, BasicAuth, Route } from "../../../proxy/config/schema.ts";
import {
  apr1,
  htpasswdProblem,
  parseHtpasswd,
  verifyPassword,
} from "../../../proxy/filters/htpasswd.ts";
import { basicCredentials } from "../../../proxy/pipeline/steps/basic-auth.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { SecretData } from "../../../proxy/tls/secrets.ts";
import { cluster, get, startEcho, servingConfig, oneRouteConfig } from "./helpers.ts";
import type { Echo, EchoBody } from "./helpers.ts";

const sha1 = (pw: string) =>
  `{SHA}${Buffer.from(execFileSync("openssl", ["dgst", "-sha1", "-binary"], { input: pw })).toString("base64")}`;
const basic = (user: string, pw: string) =>
  `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

describe("htpasswd: the hashes Apache's htpasswd writes", () => {
  it("checks bcrypt, Apache MD5, SHA-1 and salted SHA-1 against reference implementations", async () => {
    // Apache MD5 as OpenSSL computes it (openssl passwd -apr1), non-ASCII included
    const md5 = execFileSync("openssl", ["passwd", "-apr1", "-salt", "abcdefgh", "pässwörd"])
      .toString()
      .trim();
    expect(apr1("pässwörd", "abcdefgh")).to.equal(md5);
    // the OpenBSD bcrypt test vector, and the $2y$ prefix htpasswd -B writes
    const vector = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const ssha = (pw: string, salt: Buffer) => {
      const digest = execFileSync("openssl", ["dgst", "-sha1", "-binary"], {
        input: Buffer.concat([Buffer.from(pw), salt]),
      });
      return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
    };
    const file = [
      "# users",
      `bob:${vector.replace("$2a$", "$2y$")}`,
      `carol:${md5}`,
      `dave:${sha1("secret")}`,
      `erin:${ssha("salty", Buffer.from("NaCl1234"))}`,
      "",
    ].join("\n");
    const { users, problems } = parseHtpasswd(file);
    expect(problems).to.deep.equal([]);
    const check = async (user: string, pw: string) => verifyPassword(users.get(user)!, pw);
    expect([await check("bob", "U*U"), await check("bob", "U*V")]).to.deep.equal([true, false]);
    expect([await check("carol", "pässwörd"), await check("carol", "passwörd")]).to.deep.equal([
      true,
      false,
    ]);
    expect([await check("dave", "secret"), await check("dave", "Secret")]).to.deep.equal([
      true,
      false,
    ]);
    expect([await check("erin", "salty"), await check("erin", "salt")]).to.deep.equal([
      true,
      false,
    ]);
  });

  it("refuses lines it cannot check, saying which and what to use instead", () => {
    const problem = htpasswdProblem(
      ["ann:plaintext", "ben:abJnggxhB/yWI", "cy:$6$salt$abc", "no-colon", "dave:{SHA}x"].join(
        "\n",
      ),
    );
    expect(problem).to.include("line 1 (ann): not a password hash (plain text?)");
    expect(problem).to.include("line 2 (ben): a crypt(3) DES hash");
    expect(problem).to.include("line 3 (cy): an MD5/SHA-256/SHA-512 crypt(3) hash");
    expect(problem).to.include('line 4: not "user:hash"');
    expect(problem).to.include("use bcrypt (htpasswd -B)");
    expect(htpasswdProblem("# nobody\n")).to.equal("no users");
    expect(htpasswdProblem(`a:${sha1("x")}\na:${sha1("y")}`)).to.include("user a again");
  });

  it("reads Basic credentials, passwords with colons included, and nothing else", () => {
    expect(basicCredentials(basic("alice", "pa:ss"))).to.deep.equal(["alice", "pa:ss"]);
    expect(basicCredentials(`basic  ${Buffer.from("a:b").toString("base64")}`)).to.deep.equal([
      "a",
      "b",
    ]);
    expect(basicCredentials("Bearer abc")).to.equal(null);
    expect(basicCredentials(`Basic ${Buffer.from("nocolon").toString("base64")}`)).to.equal(null);
    expect(basicCredentials(undefined)).to.equal(null);
  });
});

describe("proxy: basic auth and API keys (SecurityPolicy basicAuth, apiKeyAuth)", function () {
  this.timeout(20_000);
  let a: Echo;
  before(async () => {
    a = await startEcho("a");
  });
  after(async () => {
    await a.close();
  });

  const usersRef = { namespace: "web", name: "users" };
  const keysRef = { namespace: "web", name: "keys" };
  const moreKeysRef = { namespace: "web", name: "more-keys" };

  async function serving(extra: Partial<Route>, credentials: Map<string, SecretData>) {
    const secrets = new StaticSecretProvider(new Map(), credentials);
    const served = await servingConfig(
      port => oneRouteConfig(port, cluster("a", [a.port]), extra),
      {
        secrets,
      },
    );
    return { ...served, secrets };
  }

  const basicAuth: BasicAuth = {
    secretRef: usersRef,
    realm: "staff",
    forwardUsernameHeader: "X-User",
  };

  it("answers 401 with a Basic challenge without valid credentials, and forwards the user it let in", async () => {
    // cost 4: the test checks the scheme, not the CPU
    const hash = bcrypt.hashSync("hunter2", 4);
    const { port, px, secrets } = await serving(
      { basicAuth },
      new Map([["web/users", { ".htpasswd": `alice:${hash}\nbob:${sha1("builder")}\n` }]]),
    );
    const none = await get(port, "/");
    expect(none.status).to.equal(401);
    expect(none.headers["www-authenticate"]).to.equal('Basic realm="staff", charset="UTF-8"');
    const wrong = await get(port, "/", { headers: { authorization: basic("alice", "hunter3") } });
    expect(wrong.status).to.equal(401);
    expect(wrong.body).to.include("invalid user or password");
    const stranger = await get(port, "/", { headers: { authorization: basic("eve", "x") } });
    expect(stranger.status).to.equal(401);
    for (let i = 0; i < 2; i++) {
      // the second one is answered from the remembered check
      const ok = await get(port, "/", {
        headers: { authorization: basic("alice", "hunter2"), "x-user": "forged" },
      });
      expect(ok.status).to.equal(200);
      expect(ok.json<EchoBody>().headers["x-user"]).to.equal("alice");
    }
    const bob = await get(port, "/", { headers: { authorization: basic("bob", "builder") } });
    expect(bob.json<EchoBody>().headers["x-user"]).to.equal("bob");

    // a rotated Secret applies to the next request, remembered checks forgotten
    secrets.replace(new Map(), new Map([["web/users", { ".htpasswd": `bob:${sha1("builder")}` }]]));
    const gone = await get(port, "/", { headers: { authorization: basic("alice", "hunter2") } });
    expect(gone.status).to.equal(401);
    const metrics = await px.metrics.registry.getSingleMetricAsString(
      "rauta_credential_auth_total",
    );
    expect(metrics).to.include('route="r",method="basic",result="allowed"} 3');
    expect(metrics).to.include('route="r",method="basic",result="missing"} 1');
    expect(metrics).to.include('route="r",method="basic",result="denied"} 3');
    await px.close(100);
  });

  it("answers 500, never lets a request in, while the users' Secret is not loaded, and says so", async () => {
    const { port, px, secrets, applied } = await serving({ basicAuth }, new Map());
    expect(applied.problems.join("\n")).to.include("Secret web/users");
    const r = await get(port, "/", { headers: { authorization: basic("alice", "x") } });
    expect(r.status).to.equal(500);
    expect(r.body).to.include("Secret web/users, key .htpasswd");
    secrets.replace(new Map(), new Map([["web/users", { ".htpasswd": `alice:${sha1("x")}` }]]));
    const later = await get(port, "/", { headers: { authorization: basic("alice", "x") } });
    expect(later.status).to.equal(200);
    await px.close(100);
  });

  it("answers 500 on a route whose policy's Secrets cannot serve, whatever the client sends", async () => {
    const users = new Map([["web/users", { ".htpasswd": `alice:${sha1("x")}` }]]);
    const { port, px } = await serving(
      {
        basicAuth: { ...basicAuth, unusable: "Secret web/users not found" },
        apiKeyAuth: { ...apiKeyAuth, unusable: "Secret web/keys not found" },
      },
      users,
    );
    const r = await get(port, "/", { headers: { authorization: basic("alice", "x") } });
    expect(r.status).to.equal(500);
    // the API-key check comes first (chain step 2)
    expect(r.body).to.include("API keys unavailable: Secret web/keys not found");
    await px.close(100);
  });

  const apiKeyAuth: ApiKeyAuth = {
    secretRefs: [keysRef, moreKeysRef],
    extractFrom: [{ headers: ["X-API-Key"], params: ["api_key"], cookies: ["key"] }],
    forwardClientIdHeader: "X-Client-Id",
    sanitize: true,
  };
  const keys = () =>
    new Map<string, SecretData>([
      ["web/keys", { "client-a": "key-a", "client-b": "key-b" }],
      ["web/more-keys", { "client-c": "key-c", "client-d": "" }],
    ]);

  it("lets a known API key in from a header, a query parameter or a cookie, forwarding its client and removing the key", async () => {
    const { port, px } = await serving({ apiKeyAuth }, keys());
    const header = await get(port, "/x?q=1", { headers: { "x-api-key": "key-a" } });
    expect(header.status).to.equal(200);
    const seen = header.json<EchoBody>();
    expect(seen.headers["x-client-id"]).to.equal("client-a");
    expect(seen.headers["x-api-key"]).to.equal(undefined);
    expect(seen.url).to.equal("/x?q=1");

    const param = (await get(port, "/x?a=1&api_key=key-c&b=2")).json<EchoBody>();
    expect(param.headers["x-client-id"]).to.equal("client-c");
    expect(param.url).to.equal("/x?a=1&b=2");

    const cookie = (
      await get(port, "/", { headers: { cookie: "theme=dark; key=key-b; lang=fi" } })
    ).json<EchoBody>();
    expect(cookie.headers["x-client-id"]).to.equal("client-b");
    expect(cookie.headers.cookie).to.equal("theme=dark; lang=fi");
    await px.close(100);
  });

  it("answers 401 to a missing, unknown or empty key and 500 while a key Secret is missing", async () => {
    const { port, px, secrets } = await serving({ apiKeyAuth }, keys());
    expect((await get(port, "/")).status).to.equal(401);
    const unknown = await get(port, "/", { headers: { "x-api-key": "key-z" } });
    expect([unknown.status, unknown.body.includes("API key not valid")]).to.deep.equal([401, true]);
    // client-d's empty key is no key
    expect((await get(port, "/?api_key=")).status).to.equal(401);
    // a header wins over a parameter of the same entry: a wrong header is not saved by a good parameter
    expect(
      (await get(port, "/?api_key=key-a", { headers: { "x-api-key": "no" } })).status,
    ).to.equal(401);
    secrets.replace(new Map(), new Map([["web/keys", { "client-a": "key-a" }]]));
    const missing = await get(port, "/", { headers: { "x-api-key": "key-a" } });
    expect(missing.status).to.equal(500);
    expect(missing.body).to.include("Secret web/more-keys");
    await px.close(100);
  });

  it("keeps the key for the backend without sanitize", async () => {
    const { port, px } = await serving(
      {
        apiKeyAuth: {
          ...apiKeyAuth,
          sanitize: false,
          forwardClientIdHeader: undefined,
        } as ApiKeyAuth,
      },
      keys(),
    );
    const seen = (await get(port, "/", { headers: { "x-api-key": "key-a" } })).json<EchoBody>();
    expect(seen.headers["x-api-key"]).to.equal("key-a");
    expect(seen.headers["x-client-id"]).to.equal(undefined);
    await px.close(100);
  });
});
