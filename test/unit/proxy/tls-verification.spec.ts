// Certificate verification both ways. TLS to backends (BackendTLSPolicy): the proxy verifies the backend's chain against the
// policy's CA bundle, its name against the policy hostname or subjectAltNames, sends the policy
// hostname as SNI (not the client's Host), and presents the Gateway's client certificate.
// Client certificates on HTTPS listeners (Gateway spec.tls.frontend): AllowValidOnly refuses
// the handshake without one from the listener's CA, AllowInsecureFallback serves anyway.
// Request → expected status / what the backend saw, as in the conformance tests.
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import type { ClusterTls } from "../../../proxy/config/schema.ts";
import type { Proxy } from "../../../proxy/runtime/proxy.ts";
import { StaticSecretProvider } from "../../../proxy/tls/secrets.ts";
import type { TlsKeyPair } from "../../../proxy/tls/secrets.ts";
import { makeCa } from "../../helpers/certs.ts";
import type { Ca } from "../../helpers/certs.ts";
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

interface Seen {
  servername: string | undefined;
  host: string | undefined;
  clientCert: string | null;
}

describe("TLS to backends (BackendTLSPolicy)", function () {
  this.timeout(30_000);
  let dir: string;
  let ca: Ca;
  let otherCa: Ca;
  let clientPair: TlsKeyPair;
  let backend: https.Server;
  let backendPort: number;
  let seen: Seen[];
  let proxy: Proxy | null = null;
  let secrets: StaticSecretProvider;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-backend-tls-"));
    ca = makeCa(dir, "backend-ca");
    otherCa = makeCa(dir, "other-ca");
    const serving = ca.issue(
      "backend",
      "DNS:backend.example.com,URI:spiffe://example.com/backend",
      "serverAuth",
    );
    clientPair = ca.issue("gateway-client", "DNS:gateway.example.com", "clientAuth");
    seen = [];
    backend = https.createServer(
      { ...serving, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as TLSSocket & { servername?: string | false };
        const peer = socket.getPeerCertificate();
        seen.push({
          servername: socket.servername || undefined,
          host: req.headers.host,
          clientCert: peer?.raw ? new X509Certificate(peer.raw).fingerprint256 : null,
        });
        res.end("ok");
      },
    );
    backendPort = await freePort();
    await new Promise<void>(r => backend.listen(backendPort, "127.0.0.1", r));
  });

  after(async () => {
    backend.closeAllConnections();
    await new Promise(r => backend.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen = [];
    secrets = new StaticSecretProvider(new Map([["default/client", clientPair]]));
  });

  afterEach(async () => {
    await proxy?.close(0);
    proxy = null;
  });

  async function serve(tls: ClusterTls): Promise<number> {
    const port = await freePort();
    proxy = testProxy({ secrets });
    const result = await proxy.apply(
      oneRouteConfig(port, cluster("secure", [backendPort], { tls })),
    );
    expect(result.problems).to.deep.equal([]);
    return port;
  }

  const policy = (extra: Partial<ClusterTls> = {}): ClusterTls => ({
    serverName: "backend.example.com",
    caCertificates: ca.cert,
    subjectAltNames: [],
    ...extra,
  });

  it("a backend whose chain leads to the policy's CA and carries its hostname is reached, with the hostname as SNI", async () => {
    const port = await serve(policy());
    const reply = await get(port, "/", { host: "www.example.org" });
    expect(reply.status).to.equal(200);
    expect(seen).to.have.length(1);
    expect(seen[0]!.servername).to.equal("backend.example.com");
    // the request itself keeps the client's Host
    expect(seen[0]!.host).to.equal("www.example.org");
    expect(seen[0]!.clientCert).to.equal(null);
  });

  it("a certificate without the policy's hostname → 502, nothing reaches the backend's handler", async () => {
    const port = await serve(policy({ serverName: "mismatch.example.com" }));
    expect((await get(port, "/")).status).to.equal(502);
    expect(seen).to.have.length(0);
  });

  it("a chain that does not lead to the policy's CA → 502", async () => {
    const port = await serve(policy({ caCertificates: otherCa.cert }));
    expect((await get(port, "/")).status).to.equal(502);
    expect(seen).to.have.length(0);
  });

  it("the system trust store does not trust a private CA → 502", async () => {
    const { caCertificates: _none, ...system } = policy();
    const port = await serve(system);
    expect((await get(port, "/")).status).to.equal(502);
  });

  it("subjectAltNames replace the hostname check: a Hostname SAN or a URI SAN the certificate has → 200", async () => {
    // SNI stays the policy hostname, which the certificate need not carry
    for (const san of [
      { type: "Hostname" as const, value: "backend.example.com" },
      { type: "URI" as const, value: "spiffe://example.com/backend" },
    ]) {
      const port = await serve(policy({ serverName: "sni.example.net", subjectAltNames: [san] }));
      expect((await get(port, "/")).status, san.value).to.equal(200);
      expect(seen.at(-1)!.servername).to.equal("sni.example.net");
      await proxy!.close(0);
      proxy = null;
    }
  });

  it("subjectAltNames the certificate does not carry → 502, even when the hostname would match", async () => {
    const port = await serve(
      policy({
        subjectAltNames: [
          { type: "URI", value: "spiffe://example.com/other" },
          { type: "Hostname", value: "other.example.com" },
        ],
      }),
    );
    expect((await get(port, "/")).status).to.equal(502);
    expect(seen).to.have.length(0);
  });

  it("presents the Gateway's client certificate to the backend", async () => {
    const port = await serve(
      policy({ clientCertificate: { namespace: "default", name: "client" } }),
    );
    expect((await get(port, "/")).status).to.equal(200);
    expect(seen[0]!.clientCert).to.equal(new X509Certificate(clientPair.cert).fingerprint256);
  });

  it("a rotated client certificate is presented on the next connection, without a new config", async () => {
    const port = await serve(
      policy({ clientCertificate: { namespace: "default", name: "client" } }),
    );
    expect((await get(port, "/")).status).to.equal(200);
    const rotated = ca.issue("gateway-client-2", "DNS:gateway.example.com", "clientAuth");
    secrets.replace(new Map([["default/client", rotated]]));
    const want = new X509Certificate(rotated.cert).fingerprint256;
    for (let i = 0; i < 50 && seen.at(-1)!.clientCert !== want; i++) {
      await new Promise(r => setTimeout(r, 20));
      expect((await get(port, "/")).status).to.equal(200);
    }
    expect(seen.at(-1)!.clientCert).to.equal(want);
  });

  it("a client certificate Secret the proxy cannot read is reported with the config", async () => {
    const port = await freePort();
    proxy = testProxy({ secrets: new StaticSecretProvider() });
    const result = await proxy.apply(
      oneRouteConfig(
        port,
        cluster("secure", [backendPort], {
          tls: policy({ clientCertificate: { namespace: "default", name: "gone" } }),
        }),
      ),
    );
    expect(result.problems).to.deep.equal([
      "cluster secure: client certificate secret default/gone not found",
    ]);
  });
});

describe("client certificates on HTTPS listeners (Gateway spec.tls.frontend)", function () {
  this.timeout(30_000);
  let dir: string;
  let ca: Ca;
  let otherCa: Ca;
  let serving: TlsKeyPair;
  let echo: Echo;
  let proxy: Proxy | null = null;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rauta-frontend-tls-"));
    ca = makeCa(dir, "client-ca");
    otherCa = makeCa(dir, "stranger-ca");
    serving = ca.issue("gateway", "DNS:gw.example.com", "serverAuth");
    echo = await startEcho("app");
  });

  after(async () => {
    await echo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await proxy?.close(0);
    proxy = null;
  });

  async function serve(
    mode: "AllowValidOnly" | "AllowInsecureFallback",
    trusted = ca.cert,
  ): Promise<number> {
    const port = await freePort();
    proxy = testProxy({ secrets: new StaticSecretProvider(new Map([["default/gw", serving]])) });
    const result = await proxy.apply(
      simpleConfig(
        port,
        [{ routeId: "r", match: prefix("/") }],
        [route("r", ["app"])],
        [cluster("app", [echo.port])],
        1,
        {
          protocol: "HTTPS",
          tls: {
            certificates: [{ secretRef: { namespace: "default", name: "gw" }, hostnames: ["*"] }],
            clientValidation: { caCertificates: trusted, mode },
          },
        },
      ),
    );
    expect(result.problems).to.deep.equal([]);
    return port;
  }

  function request(port: number, client?: TlsKeyPair): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: "127.0.0.1",
          port,
          path: "/",
          servername: "gw.example.com",
          headers: { host: "gw.example.com" },
          ca: ca.cert,
          agent: false,
          ...(client ? { cert: client.cert, key: client.key } : {}),
        },
        res => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  // HTTP/2 (ALPN h2), as the conformance suite's Go client speaks
  function h2Request(port: number, client?: TlsKeyPair): Promise<number> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, {
        servername: "gw.example.com",
        ca: ca.cert,
        ...(client ? { cert: client.cert, key: client.key } : {}),
      });
      session.on("error", reject);
      const req = session.request({ ":path": "/", ":authority": "gw.example.com" });
      req.on("response", headers => {
        req.resume();
        req.on("end", () => {
          session.close();
          resolve(Number(headers[":status"]));
        });
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("AllowValidOnly: a certificate from the listener's CA → 200; another CA's or none → handshake refused", async () => {
    const port = await serve("AllowValidOnly");
    const valid = ca.issue("client", "DNS:client.example.com", "clientAuth");
    const stranger = otherCa.issue("stranger", "DNS:stranger.example.com", "clientAuth");
    expect(await request(port, valid)).to.equal(200);
    for (const client of [stranger, undefined]) {
      const outcome = await request(port, client).then(
        status => `status ${status}`,
        (err: Error) => `refused: ${err.message}`,
      );
      expect(outcome).to.match(/^refused/);
    }
  });

  it("AllowInsecureFallback: asks for a certificate but serves valid, invalid and no certificate alike", async () => {
    const port = await serve("AllowInsecureFallback");
    const valid = ca.issue("client-2", "DNS:client.example.com", "clientAuth");
    const stranger = otherCa.issue("stranger-2", "DNS:stranger.example.com", "clientAuth");
    // a CA with the very same name as the trusted one (the suite's two CAs share theirs): the
    // chain looks right by name and fails on the signature
    const twinDir = fs.mkdtempSync(path.join(dir, "twin-"));
    const twin = makeCa(twinDir, "client-ca").issue("twin", "DNS:twin.example.com", "clientAuth");
    for (const client of [valid, stranger, twin, undefined]) {
      expect(await request(port, client)).to.equal(200);
      expect(await h2Request(port, client)).to.equal(200);
    }
  });

  it("AllowInsecureFallback: serves an RSA certificate whose signature fails against a same-named CA (the suite's certificates)", async () => {
    // The conformance suite's client certificates carry no authorityKeyIdentifier, so OpenSSL
    // picks the trusted CA by name alone and the RSA signature check fails. That failure stays
    // on OpenSSL's error queue and reset the connection right after the handshake.
    const suiteLike = { algorithm: "rsa", keyIdentifiers: false } as const;
    const trusted = makeCa(fs.mkdtempSync(path.join(dir, "rsa-trusted-")), "gatewayapi", suiteLike);
    const twin = makeCa(fs.mkdtempSync(path.join(dir, "rsa-twin-")), "gatewayapi", suiteLike).issue(
      "twin",
      "DNS:twin.example.com",
      "clientAuth",
    );
    const port = await serve("AllowInsecureFallback", trusted.cert);
    const valid = trusted.issue("valid", "DNS:valid.example.com", "clientAuth");
    expect(await request(port, valid)).to.equal(200);
    expect(await request(port, twin)).to.equal(200);
    expect(await h2Request(port, twin)).to.equal(200);
  });
});
