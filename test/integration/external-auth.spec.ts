// The ExternalAuth filter (GEP-1494, experimental channel) against real auth services on
// hack/cluster: RAUTA deployed on the experimental CRDs, an HTTPRoute whose rule asks
// oauth2-proxy's /oauth2/auth (basic auth from an htpasswd file) before reaching the echo pod,
// and one whose rule asks a gRPC ext_authz server (hack/ext-authz, Envoy's Check API).
import { expect } from "chai";
import {
  deployLocal,
  installGatewayApiCrds,
  namespacesSettled,
  undeployLocal,
} from "../../hack/deploy/local.ts";
import type { Cluster } from "./helpers/cluster.ts";
import { clusterHandle, eventually, uniqueNamespace } from "./helpers/cluster.ts";
import { htpasswdLine, oauth2ProxyBinary } from "./helpers/oauth2-proxy.ts";
import { extAuthzBinary } from "../helpers/ext-authz.ts";
import { echoApp, httpGet } from "./helpers/workloads.ts";

interface Condition {
  type: string;
  status: string;
}

describe("ExternalAuth through the proxy, against oauth2-proxy and a gRPC ext_authz server (experimental channel)", function () {
  this.timeout(20 * 60_000);
  let k: Cluster;
  const ns = uniqueNamespace("it-extauth");
  let address = "";
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

  before(async () => {
    const bin = oauth2ProxyBinary();
    const extAuthz = extAuthzBinary();
    k = await deployLocal({ channel: "experimental" });
    k.kubectl(["create", "namespace", ns]);
    k.apply(echoApp("echo"), ns);
    k.apply(
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: "htpasswd" },
            data: { htpasswd: `${htpasswdLine("alice", "wonderland")}\n` },
          },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "oauth2-proxy", labels: { app: "oauth2-proxy" } },
            spec: {
              containers: [
                {
                  name: "oauth2-proxy",
                  image: "rauta.dev/exec:test",
                  command: [
                    bin,
                    "--http-address=0.0.0.0:4180",
                    "--upstream=static://202",
                    // no provider is reached: users sign in with basic auth from the htpasswd file
                    "--provider=github",
                    "--client-id=unused",
                    "--client-secret=unused",
                    "--cookie-secret=0123456789abcdef0123456789abcdef",
                    "--cookie-secure=false",
                    "--email-domain=*",
                    "--htpasswd-file=/etc/oauth2-proxy/htpasswd",
                    "--set-xauthrequest",
                  ],
                  ports: [{ containerPort: 4180 }],
                  readinessProbe: { tcpSocket: { port: 4180 }, periodSeconds: 1 },
                  volumeMounts: [{ name: "htpasswd", mountPath: "/etc/oauth2-proxy" }],
                },
              ],
              volumes: [{ name: "htpasswd", configMap: { name: "htpasswd" } }],
            },
          },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "oauth2-proxy" },
            spec: { selector: { app: "oauth2-proxy" }, ports: [{ port: 4180, targetPort: 4180 }] },
          },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "ext-authz", labels: { app: "ext-authz" } },
            spec: {
              containers: [
                {
                  name: "ext-authz",
                  image: "rauta.dev/exec:test",
                  command: [extAuthz, "-listen", "0.0.0.0:9191"],
                  ports: [{ containerPort: 9191 }],
                  readinessProbe: { tcpSocket: { port: 9191 }, periodSeconds: 1 },
                },
              ],
            },
          },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "ext-authz" },
            spec: { selector: { app: "ext-authz" }, ports: [{ port: 9191, targetPort: 9191 }] },
          },
        ],
      }),
      ns,
    );
    k.apply(
      `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: guarded}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    filters:
    - type: ExternalAuth
      externalAuth:
        protocol: HTTP
        backendRef: {name: oauth2-proxy, port: 4180}
        http: {path: /oauth2/auth, allowedResponseHeaders: [X-Auth-Request-User]}
    backendRefs: [{name: echo, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /grpc-checked}}]
    filters:
    - type: ExternalAuth
      externalAuth:
        protocol: GRPC
        backendRef: {name: ext-authz, port: 9191}
        grpc: {}
    backendRefs: [{name: echo, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: echo, port: 8080}]
`,
      ns,
    );
    const gateway = await eventually("Gateway Programmed", 120_000, () => {
      const g = k.getJson<{
        status?: { addresses?: Array<{ value: string }>; conditions?: Condition[] };
      }>(["gateway", "gw", "-n", ns]);
      return g.status?.conditions?.find(c => c.type === "Programmed")?.status === "True"
        ? g
        : undefined;
    });
    address = gateway.status?.addresses?.[0]?.value ?? "";
  });

  after(async () => {
    k?.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
    // the next suites expect no RAUTA install and the standard-channel CRDs
    undeployLocal();
    await namespacesSettled();
    installGatewayApiCrds(clusterHandle(), "standard");
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    httpGet(address, 80, "app.example.com", path, headers);

  it("lets a user oauth2-proxy accepts through, with the user's name for the backend", async () => {
    const r = await eventually("an allowed request through oauth2-proxy", 120_000, async () => {
      const x = await get("/admin/reports", { authorization: basic("alice", "wonderland") });
      return x.status === 200 ? x : undefined;
    });
    const body = JSON.parse(r.body) as { pod: string; headers: Record<string, string[]> };
    expect(body.pod).to.match(/^echo-/);
    expect(body.headers["X-Auth-Request-User"]).to.deep.equal(["alice"]);
  });

  it("denies what oauth2-proxy refuses, and leaves other rules alone", async () => {
    for (const authorization of [undefined, basic("alice", "wrong"), basic("mallory", "x")]) {
      const r = await get("/admin/reports", authorization ? { authorization } : {});
      expect([401, 403], `${authorization}: ${r.status} ${r.body.slice(0, 200)}`).to.include(
        r.status,
      );
    }
    expect((await get("/public")).status).to.equal(200);
  });

  it("asks the gRPC ext_authz server (protocol GRPC): its OK adds the user for the backend, its denial reaches the client", async () => {
    const r = await eventually("an allowed request through ext_authz", 120_000, async () => {
      const x = await get("/grpc-checked/x?secret=1", { authorization: "Bearer good" });
      return x.status === 200 ? x : undefined;
    });
    const body = JSON.parse(r.body) as { path: string; headers: Record<string, string[]> };
    expect(body.headers["X-Auth-User"]).to.deep.equal(["alice"]);
    // the service's query changes: ?secret removed, trace=1 set
    expect(body.path).to.include("trace=1").and.not.include("secret");
    const denied = await get("/grpc-checked/x", { authorization: "Bearer bad" });
    expect([denied.status, denied.body]).to.deep.equal([401, "who are you?"]);
    expect(denied.headers["www-authenticate"]).to.equal("Bearer");
    expect((await get("/grpc-checked/x", { authorization: "Bearer broken" })).status).to.equal(403);
  });
});
