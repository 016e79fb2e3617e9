// End to end through the real API (hack/cluster): the user's install (npm run deploy:local),
// then Gateway API objects → statuses → traffic through the proxy to echo-basic pods; admission
// messages; ReferenceGrant enforcement; controller and proxy restarts.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { ensureHostTools } from "../../hack/cluster/build.ts";
import { deployLocal, undeployLocal } from "../../hack/deploy/local.ts";
import type { Cluster } from "./helpers/cluster.ts";
import { eventually, uniqueNamespace } from "./helpers/cluster.ts";
import http2 from "node:http2";
import { frame, grpcCall } from "../helpers/grpc.ts";
import { echoApp, grpcEchoApp, httpGet } from "./helpers/workloads.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface GatewayStatus {
  status?: {
    addresses?: Array<{ value: string }>;
    conditions?: Condition[];
    listeners?: Array<{ name: string; attachedRoutes: number; conditions: Condition[] }>;
  };
}
interface RouteStatus {
  status?: { parents?: Array<{ controllerName: string; conditions: Condition[] }> };
}

const condition = (conditions: Condition[] | undefined, type: string) =>
  conditions?.find(c => c.type === type);

describe("control plane end to end (deploy:local on hack/cluster)", function () {
  this.timeout(20 * 60_000);
  let k: Cluster;
  const ns = uniqueNamespace("it-cp");
  const other = uniqueNamespace("it-cp-other");
  let address = "";

  const gateway = () => k.getJson<GatewayStatus>(["gateway", "gw", "-n", ns]);
  const route = (name: string, namespace = ns) =>
    k.getJson<RouteStatus>(["httproute", name, "-n", namespace]);
  const routeCondition = (name: string, type: string, namespace = ns) =>
    condition(
      route(name, namespace).status?.parents?.find(
        p => p.controllerName === "rauta.io/gateway-controller",
      )?.conditions,
      type,
    );
  const get = (host: string, path: string) => httpGet(address, 80, host, path);

  before(async () => {
    k = await deployLocal();
    k.kubectl(["create", "namespace", ns]);
    k.kubectl(["create", "namespace", other]);
    k.apply(echoApp("echo"), ns);
    k.apply(echoApp("echo-other"), other);
    k.apply(
      `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
`,
      ns,
    );
  });

  after(() => {
    k?.kubectlResult(["delete", "namespace", ns, other, "--wait=false"]);
    // Leave the cluster as other suites expect it: no RAUTA install claiming pool addresses.
    if (k) undeployLocal(k);
  });

  describe("routing", () => {
    it("accepts and programs the Gateway with an address from the pool", async () => {
      const status = await eventually("Gateway Programmed=True", 120_000, () => {
        const s = gateway().status;
        return condition(s?.conditions, "Programmed")?.status === "True" ? s : undefined;
      });
      expect(condition(status.conditions, "Accepted")).to.include({
        status: "True",
        reason: "Accepted",
      });
      expect(condition(status.conditions, "Programmed")).to.include({ reason: "Programmed" });
      address = status.addresses?.[0]?.value ?? "";
      expect(address).to.match(/^10\.244\.0\.2\d\d$/);
      // its generated infrastructure: a Service owned by the Gateway, pointing at its address
      const slice = await eventually("the Gateway's Service and EndpointSlice", 60_000, () => {
        const r = k.kubectlResult(["get", "endpointslice", "rauta-gw", "-n", ns, "-o", "json"]);
        return r.code === 0
          ? (JSON.parse(r.stdout) as { endpoints?: Array<{ addresses: string[] }> })
          : undefined;
      });
      expect(slice.endpoints?.[0]?.addresses).to.deep.equal([address]);
      const svc = k.getJson<{
        metadata: {
          labels?: Record<string, string>;
          ownerReferences?: Array<{ kind: string; name: string }>;
        };
        spec: { ports: Array<{ port: number }> };
      }>(["service", "rauta-gw", "-n", ns]);
      expect(svc.metadata.labels?.["gateway.networking.k8s.io/gateway-name"]).to.equal("gw");
      expect(svc.metadata.ownerReferences?.map(o => `${o.kind}/${o.name}`)).to.deep.equal([
        "Gateway/gw",
      ]);
      expect(svc.spec.ports.map(p => p.port)).to.deep.equal([80]);
    });

    it("attaches an HTTPRoute, reports Accepted/ResolvedRefs, and routes traffic to the echo pod", async () => {
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{name: echo, port: 8080}]
`,
        ns,
      );
      await eventually("route Accepted", 60_000, () =>
        routeCondition("web", "Accepted")?.status === "True" ? true : undefined,
      );
      expect(routeCondition("web", "ResolvedRefs")).to.include({
        status: "True",
        reason: "ResolvedRefs",
      });
      await eventually("listener attachedRoutes=1", 30_000, () =>
        gateway().status?.listeners?.[0]?.attachedRoutes === 1 ? true : undefined,
      );
      const response = await eventually("traffic through the proxy", 60_000, async () => {
        const r = await get("web.example.com", "/v1/items");
        return r?.status === 200 ? r : undefined;
      });
      const body = JSON.parse(response.body) as { namespace: string; pod: string; path: string };
      expect(body.namespace).to.equal(ns);
      expect(body.pod).to.match(/^echo-/);
      expect(body.path).to.equal("/v1/items");
      expect((await get("web.example.com", "/v2/items")).status).to.equal(404);
    });

    it("keeps the Gateway Programmed while routes on it come and go, and an untouched Gateway too", async () => {
      const programmed = () => condition(gateway().status?.conditions, "Programmed")?.status;
      // a second Gateway nothing in this test touches: other objects changing must not make it
      // wait for the proxies again
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: quiet}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: http, port: 80, protocol: HTTP}
`,
        other,
      );
      const quiet = () =>
        condition(
          k.getJson<GatewayStatus>(["gateway", "quiet", "-n", other]).status?.conditions,
          "Programmed",
        )?.status;
      await eventually("Gateways Programmed=True", 60_000, () =>
        programmed() === "True" && quiet() === "True" ? true : undefined,
      );
      const quietSeen = new Set<string | undefined>();
      const seen = new Set<string | undefined>();
      for (let i = 0; i < 5; i++) {
        k.apply(
          `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: churn-${i}}
spec:
  parentRefs: [{name: gw}]
  hostnames: [churn-${i}.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
          ns,
        );
        for (let j = 0; j < 4; j++) {
          seen.add(programmed());
          quietSeen.add(quiet());
          await new Promise(r => setTimeout(r, 150));
        }
      }
      for (let i = 0; i < 5; i++) k.kubectl(["delete", "httproute", `churn-${i}`, "-n", ns]);
      k.kubectl(["delete", "gateway", "quiet", "-n", other, "--wait=false"]);
      expect([...seen]).to.deep.equal(["True"]);
      expect([...quietSeen]).to.deep.equal(["True"]);
    });

    it("follows route updates and deletion", async () => {
      k.kubectl([
        "patch",
        "httproute",
        "web",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/rules/0/matches/0/path/value","value":"/v2"}]',
      ]);
      await eventually("the updated route to serve /v2", 30_000, async () =>
        (await get("web.example.com", "/v2/x")).status === 200 ? true : undefined,
      );
      expect((await get("web.example.com", "/v1/x")).status).to.equal(404);
      k.kubectl(["delete", "httproute", "web", "-n", ns]);
      await eventually("the deleted route to stop serving", 30_000, async () =>
        (await get("web.example.com", "/v2/x")).status === 404 ? true : undefined,
      );
    });
  });

  describe("GRPCRoute", () => {
    it("routes gRPC calls to the echo pod, and an open HTTP/2 connection keeps working while the config is republished", async () => {
      k.apply(grpcEchoApp("grpc-echo"), ns);
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc}
spec:
  parentRefs: [{name: gw}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: gateway_api_conformance.echo_basic.grpcecho.GrpcEcho}}]
    backendRefs: [{name: grpc-echo, port: 8080}]
`,
        ns,
      );
      const session = http2.connect(`http://${address}:80`);
      session.on("error", () => {});
      try {
        const echo = () =>
          grpcCall(session, "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo", {
            authority: "grpc.example.com",
            send: s => void s.end(frame(Buffer.alloc(0))),
          });
        const first = await eventually("a gRPC answer through the GRPCRoute", 60_000, async () => {
          const call = await echo();
          return call.trailers["grpc-status"] === "0" ? call : undefined;
        });
        // the echo's response names the pod's namespace
        expect(Buffer.concat(first.messages).toString("latin1")).to.contain(ns);
        // a method the route does not cover: the gateway's own gRPC answer
        const other = await grpcCall(session, "/other.Service/Call", {
          authority: "grpc.example.com",
          send: s => void s.end(frame(Buffer.alloc(0))),
        });
        expect(other.headers["grpc-status"]).to.equal("12");
        // a new config generation (another route) while this connection stays open
        k.apply(
          `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: republish}
spec:
  parentRefs: [{name: gw}]
  hostnames: [republish.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
          ns,
        );
        await eventually("the new route to serve", 60_000, async () =>
          (await get("republish.example.com", "/")).status === 200 ? true : undefined,
        );
        expect(session.closed || session.destroyed, "the HTTP/2 connection is still open").to.equal(
          false,
        );
        const after = await echo();
        expect(after.trailers["grpc-status"]).to.equal("0");
      } finally {
        session.destroy();
        k.kubectl(["delete", "httproute", "republish", "-n", ns]);
        k.kubectl(["delete", "grpcroute", "grpc", "-n", ns]);
      }
    });
  });

  describe("ReferenceGrant", () => {
    it("refuses a cross-namespace backend until a grant allows it, and again once the grant is gone", async () => {
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cross}
spec:
  parentRefs: [{name: gw}]
  hostnames: [cross.example.com]
  rules:
  - backendRefs: [{name: echo-other, namespace: ${other}, port: 8080}]
`,
        ns,
      );
      await eventually("RefNotPermitted", 60_000, () =>
        routeCondition("cross", "ResolvedRefs")?.reason === "RefNotPermitted" ? true : undefined,
      );
      await eventually("HTTP 500 for the refused backend", 30_000, async () =>
        (await get("cross.example.com", "/")).status === 500 ? true : undefined,
      );
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-routes}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ${ns}}]
  to: [{group: "", kind: Service}]
`,
        other,
      );
      await eventually("ResolvedRefs=True", 60_000, () =>
        routeCondition("cross", "ResolvedRefs")?.status === "True" ? true : undefined,
      );
      const allowed = await eventually("traffic to the other namespace", 30_000, async () => {
        const r = await get("cross.example.com", "/");
        return r.status === 200 ? r : undefined;
      });
      expect((JSON.parse(allowed.body) as { namespace: string }).namespace).to.equal(other);
      k.kubectl(["delete", "referencegrant", "allow-routes", "-n", other]);
      await eventually("RefNotPermitted again", 60_000, () =>
        routeCondition("cross", "ResolvedRefs")?.reason === "RefNotPermitted" ? true : undefined,
      );
      await eventually("HTTP 500 again", 30_000, async () =>
        (await get("cross.example.com", "/")).status === 500 ? true : undefined,
      );
    });
  });

  describe("admission", () => {
    const routeWith = (name: string, rule: string, annotations = "") => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}${annotations ? `, annotations: {${annotations}}` : ""}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - ${rule}
`;
    const gatewayWith = (name: string, listeners: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}}
spec:
  gatewayClassName: rauta
  listeners: ${listeners}
`;
    const cases: Array<{ name: string; invalid: string; valid: string; message: string }> = [
      {
        name: "lookahead regex",
        invalid: routeWith(
          "a1",
          `{matches: [{path: {type: RegularExpression, value: "/api/(?!x).*"}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        valid: routeWith(
          "a1",
          `{matches: [{path: {type: RegularExpression, value: "/api/[a-z]+"}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        message:
          'HTTPRoute NS/a1: spec.rules[0].matches[0].path.value: regular expression "/api/(?!x).*" is not valid RE2 (linear-time) syntax',
      },
      {
        name: "backreference in a header regex",
        invalid: routeWith(
          "a2",
          `{matches: [{headers: [{name: x-id, type: RegularExpression, value: "(a)\\\\1"}]}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        valid: routeWith(
          "a2",
          `{matches: [{headers: [{name: x-id, type: RegularExpression, value: "(a)+"}]}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        message: "spec.rules[0].matches[0].headers[0]: regular expression",
      },
      {
        name: "query param regex that does not compile",
        invalid: routeWith(
          "a3",
          `{matches: [{queryParams: [{name: q, type: RegularExpression, value: "[a-"}]}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        valid: routeWith(
          "a3",
          `{matches: [{queryParams: [{name: q, type: RegularExpression, value: "[a-z]"}]}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        message:
          'spec.rules[0].matches[0].queryParams[0]: regular expression "[a-" is not valid RE2',
      },
      {
        name: "a RequestRedirect on a backendRef",
        invalid: routeWith(
          "a4",
          `{backendRefs: [{name: echo, port: 8080, filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]}]}`,
        ),
        valid: routeWith(
          "a4",
          `{backendRefs: [{name: echo, port: 8080, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-b, value: "1"}]}}]}]}`,
        ),
        message:
          "spec.rules[0].backendRefs[0].filters[0]: RequestRedirect is not supported on a backendRef; move it to the rule's filters",
      },
      {
        name: "the same header in set and remove",
        invalid: routeWith(
          "a5",
          `{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-a]}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        valid: routeWith(
          "a5",
          `{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-b]}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        message:
          "spec.rules[0].filters[0]: header x-a is named more than once across set, add and remove",
      },
      {
        name: "path regex with an unbalanced parenthesis",
        invalid: routeWith(
          "a6",
          `{matches: [{path: {type: RegularExpression, value: "/api/("}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        valid: routeWith(
          "a6",
          `{matches: [{path: {type: RegularExpression, value: "/api/(v1|v2)"}}], backendRefs: [{name: echo, port: 8080}]}`,
        ),
        message:
          'spec.rules[0].matches[0].path.value: regular expression "/api/(" is not valid RE2',
      },
      {
        name: "unparsable rauta.io/plugins annotation",
        invalid: routeWith(
          "a7",
          `{backendRefs: [{name: echo, port: 8080}]}`,
          `"rauta.io/plugins": "auth, Bad_Name"`,
        ),
        valid: routeWith(
          "a7",
          `{backendRefs: [{name: echo, port: 8080}]}`,
          `"rauta.io/plugins": "auth, rate-limit"`,
        ),
        message: 'annotation rauta.io/plugins: "Bad_Name" is not a valid RautaPlugin name',
      },
      {
        name: "RautaPlugin config missing a required property",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: limits}
spec: {source: {builtin: rate-limit}, config: {burst: 10}, configSchema: {type: object, required: [requestsPerSecond], properties: {requestsPerSecond: {type: integer}, burst: {type: integer}}}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: limits}
spec: {source: {builtin: rate-limit}, config: {requestsPerSecond: 100, burst: 10}, configSchema: {type: object, required: [requestsPerSecond], properties: {requestsPerSecond: {type: integer}, burst: {type: integer}}}}
`,
        message:
          "RautaPlugin NS/limits: spec.config.requestsPerSecond: Invalid input: expected number, received undefined",
      },
      {
        name: "RautaPlugin whose configSchema is not a usable JSON Schema",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: schema}
spec: {source: {builtin: cors}, config: {allowOrigins: ["*"]}, configSchema: {type: nonsense}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: schema}
spec: {source: {builtin: cors}, config: {allowOrigins: ["*"]}, configSchema: {type: object}}
`,
        message:
          "RautaPlugin NS/schema: spec.configSchema is not a usable JSON Schema: Unsupported type: nonsense",
      },
      {
        name: "RautaPlugin config that does not match its schema",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: auth}
spec: {source: {builtin: jwt-auth}, config: {issuer: 42}, configSchema: {type: object, properties: {issuer: {type: string}}}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: RautaPlugin
metadata: {name: auth}
spec: {source: {builtin: jwt-auth}, config: {issuer: "https://id.example.com"}, configSchema: {type: object, properties: {issuer: {type: string}}}}
`,
        message:
          "RautaPlugin NS/auth: spec.config.issuer: Invalid input: expected string, received number",
      },
      {
        name: "BackendTrafficPolicy whose health check timeout exceeds its interval",
        invalid: `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: hc}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  healthCheck: {active: {type: HTTP, interval: 1s, timeout: 3s}}
`,
        valid: `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: hc}
spec:
  targetRefs: [{group: "", kind: Service, name: echo-unused}]
  healthCheck: {active: {type: HTTP, interval: 3s, timeout: 1s}}
`,
        message:
          "BackendTrafficPolicy NS/hc: spec.healthCheck.active.timeout (3000ms) is longer than its interval (1000ms)",
      },
    ];

    it("admits what RAUTA does not serve and conflicting listeners, and reports them in the listeners' status", async () => {
      // the conformance suite's GatewayListenerUnsupportedProtocol: accepted, never denied
      const applied = k.kubectlResult(
        ["apply", "-n", ns, "-f", "-"],
        gatewayWith(
          "g-status",
          `[{name: web, port: 8081, protocol: HTTP}, {name: db, port: 5432, protocol: TCP}, {name: tls, port: 8443, protocol: TLS, tls: {mode: Passthrough}}, {name: clash, port: 8081, protocol: HTTPS, tls: {certificateRefs: [{name: cert}]}}]`,
        ),
      );
      expect(applied.code, applied.stderr).to.equal(0);
      const listeners = await eventually("listener status of g-status", 60_000, () => {
        const l = k.getJson<GatewayStatus>(["gateway", "g-status", "-n", ns]).status?.listeners;
        return l !== undefined && l.length === 4 ? l : undefined;
      });
      const of = (name: string, type: string) =>
        condition(listeners.find(l => l.name === name)?.conditions, type);
      expect(of("db", "Accepted")?.status).to.equal("False");
      expect(of("db", "Accepted")?.reason).to.equal("UnsupportedProtocol");
      // TLS passthrough is served (TLSRoute): accepted, a port of its own
      expect(of("tls", "Accepted")?.status).to.equal("True");
      expect(of("clash", "Conflicted")?.status).to.equal("True");
      expect(of("clash", "Conflicted")?.reason).to.equal("ProtocolConflict");
      k.kubectl(["delete", "gateway", "g-status", "-n", ns]);
    });

    it("reports a TLS Secret whose certificate does not parse: ResolvedRefs False, InvalidCertificateRef", async () => {
      // the conformance suite's GatewayInvalidTLSConfiguration (malformed Secret)
      k.apply(
        `
apiVersion: v1
kind: Secret
metadata: {name: broken-cert}
type: kubernetes.io/tls
data: {tls.crt: bm90IGEgY2VydGlmaWNhdGU=, tls.key: bm90IGEga2V5}
---
${gatewayWith("g-tls", `[{name: https, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: broken-cert}]}}]`)}`,
        ns,
      );
      const resolved = await eventually("ResolvedRefs of g-tls/https", 60_000, () => {
        const l = k.getJson<GatewayStatus>(["gateway", "g-tls", "-n", ns]).status?.listeners;
        const c = condition(l?.find(x => x.name === "https")?.conditions, "ResolvedRefs");
        return c?.status === "False" ? c : undefined;
      });
      expect(resolved.reason).to.equal("InvalidCertificateRef");
      expect(resolved.message).to.contain("tls.crt is not a PEM certificate");
      k.kubectl(["delete", "gateway", "g-tls", "-n", ns]);
    });

    for (const c of cases) {
      it(`rejects ${c.name} with the intended message; accepts the valid twin`, () => {
        const rejected = k.kubectlResult(["apply", "-n", ns, "-f", "-"], c.invalid);
        expect(rejected.code, rejected.stdout).to.not.equal(0);
        expect(rejected.stderr).to.include("denied the request");
        expect(rejected.stderr).to.include(c.message.replaceAll("NS", ns));
        const accepted = k.kubectlResult(["apply", "-n", ns, "-f", "-"], c.valid);
        expect(accepted.code, accepted.stderr).to.equal(0);
      });
    }
  });

  describe("BackendTrafficPolicy", () => {
    // a backend whose health endpoint can be failed for a while (GET /down?ms=N on the pod
    // that answers), and that answers /status/<code> with that code
    const flakyApp = (name: string, replicas: number) => {
      const server = `
const http = require("node:http");
let downUntil = 0;
http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/healthz") { res.writeHead(Date.now() < downUntil ? 503 : 200); return res.end(); }
  if (url.pathname === "/down") downUntil = Date.now() + Number(url.searchParams.get("ms") ?? 5000);
  const code = url.pathname.startsWith("/status/") ? Number(url.pathname.slice(8)) : 200;
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify({ pod: process.env.POD_NAME, path: url.pathname }));
}).listen(3000);`;
      return JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name },
            spec: {
              replicas,
              selector: { matchLabels: { app: name } },
              template: {
                metadata: { labels: { app: name } },
                spec: {
                  terminationGracePeriodSeconds: 1,
                  containers: [
                    {
                      name: "flaky",
                      image: "rauta.dev/exec:test",
                      command: [process.execPath, "-e", server],
                      env: [
                        {
                          name: "POD_NAME",
                          valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
                        },
                      ],
                      ports: [{ name: "http", containerPort: 3000 }],
                      readinessProbe: { tcpSocket: { port: 3000 }, periodSeconds: 1 },
                    },
                  ],
                },
              },
            },
          },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name },
            spec: {
              selector: { app: name },
              ports: [{ name: "http", port: 8080, targetPort: "http" }],
            },
          },
        ],
      });
    };
    const podOf = (r: { status: number; body: string }) =>
      r.status === 200 ? (JSON.parse(r.body) as { pod: string }).pod : `status ${r.status}`;
    const policyAccepted = (name: string) =>
      eventually(`BackendTrafficPolicy ${name} Accepted`, 60_000, () => {
        const p = k.getJson<{
          status?: { ancestors?: Array<{ controllerName: string; conditions: Condition[] }> };
        }>(["backendtrafficpolicy", name, "-n", ns]);
        const c = condition(
          p.status?.ancestors?.find(a => a.controllerName === "rauta.io/gateway-controller")
            ?.conditions,
          "Accepted",
        );
        return c?.status === "True" ? c : undefined;
      });

    before(() => {
      k.apply(flakyApp("flaky", 2), ns);
      k.apply(echoApp("sticky", 3), ns);
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: policies}
spec:
  parentRefs: [{name: gw}]
  hostnames: [policies.example.com]
  rules:
  - name: limited
    matches: [{path: {type: PathPrefix, value: /limited}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: per-client
    matches: [{path: {type: PathPrefix, value: /per-client}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: sticky
    matches: [{path: {type: PathPrefix, value: /sticky}}]
    backendRefs: [{name: sticky, port: 8080}]
  - name: global
    matches: [{path: {type: PathPrefix, value: /global}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: guarded
    matches: [{path: {type: PathPrefix, value: /guarded}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: signed-in
    matches: [{path: {type: PathPrefix, value: /signed-in}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: keyed
    matches: [{path: {type: PathPrefix, value: /keyed}}]
    backendRefs: [{name: echo, port: 8080}]
  - name: flaky
    matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: flaky, port: 8080}]
`,
        ns,
      );
    });

    it("SecurityPolicy: refuses a bad range at kubectl apply, answers 403 outside the allow list, 200 once allowed", async () => {
      const policy = (cidrs: string[]) => `
apiVersion: rauta.io/v1alpha1
kind: SecurityPolicy
metadata: {name: guard}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: guarded}]
  authorization:
    rules: [{action: Allow, principal: {clientCIDRs: ${JSON.stringify(cidrs)}}}]
`;
      const bad = k.kubectlResult(["apply", "-n", ns, "-f", "-"], policy(["10.0.0.0/33"]));
      expect(bad.code).to.not.equal(0);
      expect(bad.stderr).to.include("the prefix length must be 0 to 32");
      // only a documentation address may pass: the test's own address is outside
      k.apply(policy(["192.0.2.1"]), ns);
      await eventually("the allow list to be served (403)", 60_000, async () =>
        (await get("policies.example.com", "/guarded")).status === 403 ? true : undefined,
      );
      const denied = await get("policies.example.com", "/guarded");
      expect(denied.body).to.include("client address not allowed");
      // other rules are open (the sticky pods, applied in before(), may still be starting)
      await eventually("another rule of the route to answer 200", 60_000, async () =>
        (await get("policies.example.com", "/sticky")).status === 200 ? true : undefined,
      );
      k.apply(policy(["0.0.0.0/0", "::/0"]), ns);
      await eventually("everyone to be allowed", 60_000, async () =>
        (await get("policies.example.com", "/guarded")).status === 200 ? true : undefined,
      );
      const p = k.getJson<{
        status?: { ancestors?: Array<{ conditions: Condition[] }> };
      }>(["securitypolicy", "guard", "-n", ns]);
      expect(condition(p.status?.ancestors?.[0]?.conditions, "Accepted")?.status).to.equal("True");
    });

    it("SecurityPolicy: basic auth and API keys from Secrets through the proxy; a rotated password applies, a deleted key Secret closes the rule (500)", async () => {
      const sha1 = (pw: string) => `{SHA}${createHash("sha1").update(pw).digest("base64")}`;
      const users = (line: string) => `
apiVersion: v1
kind: Secret
metadata: {name: staff}
type: Opaque
stringData:
  .htpasswd: "${line}"
`;
      const keysSecret = `
apiVersion: v1
kind: Secret
metadata: {name: partner-keys}
type: Opaque
stringData: {partner-a: key-1}
`;
      k.apply(users(`alice:${sha1("s3cret")}`), ns);
      k.apply(keysSecret, ns);
      const keysPolicy = (extractFrom: string) => `
apiVersion: rauta.io/v1alpha1
kind: SecurityPolicy
metadata: {name: partners}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: keyed}]
  apiKeyAuth:
    credentialRefs: [{name: partner-keys}]
    extractFrom: ${extractFrom}
    forwardClientIDHeader: X-Client-Id
    sanitize: true
`;
      const bad = k.kubectlResult(["apply", "-n", ns, "-f", "-"], keysPolicy("[{}]"));
      expect(bad.code).to.not.equal(0);
      expect(bad.stderr).to.include("name a header, a query parameter or a cookie the key is in");
      k.apply(keysPolicy("[{headers: [x-api-key]}]"), ns);
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: SecurityPolicy
metadata: {name: staff}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: signed-in}]
  basicAuth:
    users: {name: staff}
    realm: staff
    forwardUsernameHeader: X-User
`,
        ns,
      );
      const as = (user: string, pw: string) => ({
        authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`,
      });
      const signedIn = (pw: string) =>
        httpGet(address, 80, "policies.example.com", "/signed-in", as("alice", pw));
      // the route is open before the policy attaches: wait for the policy, not just a 200
      await eventually("basic auth to guard the rule and let alice in", 60_000, async () =>
        (await get("policies.example.com", "/signed-in")).status === 401 &&
        (await signedIn("s3cret")).status === 200
          ? true
          : undefined,
      );
      const echoed = await signedIn("s3cret");
      const echoedHeaders = (b: string) =>
        (JSON.parse(b) as { headers: Record<string, string[]> }).headers;
      expect(echoedHeaders(echoed.body)["X-User"]).to.deep.equal(["alice"]);
      const anonymous = await get("policies.example.com", "/signed-in");
      expect(anonymous.status).to.equal(401);
      expect(anonymous.headers["www-authenticate"]).to.equal(
        'Basic realm="staff", charset="UTF-8"',
      );
      expect((await signedIn("wrong")).status).to.equal(401);

      const keyed = (key?: string) =>
        httpGet(address, 80, "policies.example.com", "/keyed", key ? { "x-api-key": key } : {});
      await eventually("the API key to guard the rule and let partner-a in", 60_000, async () =>
        (await keyed()).status === 401 && (await keyed("key-1")).status === 200 ? true : undefined,
      );
      const partner = await keyed("key-1");
      expect(echoedHeaders(partner.body)["X-Client-Id"]).to.deep.equal(["partner-a"]);
      expect(echoedHeaders(partner.body)["X-Api-Key"]).to.equal(undefined);
      expect((await keyed()).status).to.equal(401);
      expect((await keyed("key-2")).status).to.equal(401);

      // a new password: the copy in the proxy's namespace follows, no new config needed
      k.apply(users(`alice:${sha1("n3w")}`), ns);
      await eventually("the new password to apply", 60_000, async () =>
        (await signedIn("n3w")).status === 200 && (await signedIn("s3cret")).status === 401
          ? true
          : undefined,
      );

      // the key Secret gone: the rule closes (500), the policy says why
      k.kubectl(["delete", "secret", "partner-keys", "-n", ns]);
      await eventually("the keyed rule to close", 60_000, async () =>
        (await keyed("key-1")).status === 500 ? true : undefined,
      );
      const accepted = await eventually("the policy to say why", 60_000, () => {
        const p = k.getJson<{ status?: { ancestors?: Array<{ conditions: Condition[] }> } }>([
          "securitypolicy",
          "partners",
          "-n",
          ns,
        ]);
        const c = condition(p.status?.ancestors?.[0]?.conditions, "Accepted");
        return c?.status === "False" ? c : undefined;
      });
      expect(accepted.reason).to.equal("Invalid");
      expect(accepted?.message).to.include(`Secret ${ns}/partner-keys not found`);
    });

    it("rate-limits globally from a Redis (a real redis-server pod), and fails open when it is gone", async () => {
      ensureHostTools({ "redis-server": "redis-server" });
      k.apply(
        JSON.stringify({
          apiVersion: "v1",
          kind: "List",
          items: [
            {
              apiVersion: "apps/v1",
              kind: "Deployment",
              metadata: { name: "redis" },
              spec: {
                replicas: 1,
                selector: { matchLabels: { app: "redis" } },
                template: {
                  metadata: { labels: { app: "redis" } },
                  spec: {
                    terminationGracePeriodSeconds: 1,
                    containers: [
                      {
                        name: "redis",
                        image: "rauta.dev/exec:test",
                        command: [
                          "redis-server",
                          "--port",
                          "6379",
                          "--protected-mode",
                          "no",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                        ],
                        ports: [{ name: "redis", containerPort: 6379 }],
                        readinessProbe: { tcpSocket: { port: 6379 }, periodSeconds: 1 },
                      },
                    ],
                  },
                },
              },
            },
            {
              apiVersion: "v1",
              kind: "Service",
              metadata: { name: "redis" },
              spec: { selector: { app: "redis" }, ports: [{ port: 6379, targetPort: "redis" }] },
            },
          ],
        }),
        ns,
      );
      k.kubectl(["rollout", "status", "deployment/redis", "-n", ns, "--timeout=120s"]);
      // the proxy dials the Service's ClusterIP (this cluster's DNS stand-in resolves nothing)
      const ip = k.getJson<{ spec: { clusterIP: string } }>(["service", "redis", "-n", ns]).spec
        .clusterIP;
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: global-limit}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: global}]
  rateLimit:
    global: {requests: 2, unit: Minute, key: {type: Header, header: X-Client}, redis: {url: "redis://${ip}:6379"}}
`,
        ns,
      );
      await policyAccepted("global-limit");
      await eventually("the global limit to be served", 60_000, async () =>
        (await get("policies.example.com", "/global")).status === 429 ? true : undefined,
      );
      const send = () =>
        httpGet(address, 80, "policies.example.com", "/global", { "x-client": "carol" });
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await send()).status);
      expect(statuses).to.deep.equal([200, 200, 429]);
      // the budget is in Redis: its key is there (the host reaches the ClusterIP too)
      const keys = execFileSync("redis-cli", ["-h", ip, "-p", "6379", "--scan"], {
        encoding: "utf8",
      });
      expect(keys).to.include("rauta:rl:");
      // Redis gone: FailOpen (the default) lets carol through
      k.kubectl(["scale", "deployment/redis", "-n", ns, "--replicas=0"]);
      await eventually("requests to pass with Redis gone (FailOpen)", 60_000, async () =>
        (await send()).status === 200 ? true : undefined,
      );
    });

    it("rate-limits a rule: 429 with Retry-After and RateLimit headers once the burst is spent", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: limit}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: limited}]
  rateLimit: {local: {requests: 3, unit: Minute, key: {type: Header, header: X-Client}}}
`,
        ns,
      );
      await policyAccepted("limit");
      // the first 429 proves the policy is served; the client key starts fresh after that
      await eventually("the limit to be served", 60_000, async () =>
        (await get("policies.example.com", "/limited")).status === 429 ? true : undefined,
      );
      const send = () =>
        httpGet(address, 80, "policies.example.com", "/limited", { "x-client": "alice" });
      const statuses: number[] = [];
      let last = await send();
      statuses.push(last.status);
      for (let i = 0; i < 3; i++) statuses.push((last = await send()).status);
      expect(statuses).to.deep.equal([200, 200, 200, 429]);
      expect(Number(last.headers["retry-after"])).to.be.within(1, 20);
      expect(last.headers["x-ratelimit-limit"]).to.equal("3");
      expect(last.headers["x-ratelimit-remaining"]).to.equal("0");
      expect(last.headers["ratelimit-policy"]).to.equal('"default";q=3;w=60');
      // another key has a bucket of its own; other rules are not limited
      const bob = await httpGet(address, 80, "policies.example.com", "/limited", {
        "x-client": "bob",
      });
      expect(bob.status).to.equal(200);
      expect(bob.headers["x-ratelimit-remaining"]).to.equal("2");
      expect((await get("policies.example.com", "/sticky")).status).to.equal(200);
    });

    it("rate-limits per client address behind a trusted proxy (ClientTrafficPolicy numTrustedHops)", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: behind-lb}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  clientIPDetection: {xForwardedFor: {numTrustedHops: 1}}
---
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: per-client}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: per-client}]
  rateLimit: {local: {requests: 2, unit: Minute}}
`,
        ns,
      );
      await policyAccepted("per-client");
      const accepted = await eventually("ClientTrafficPolicy behind-lb Accepted", 60_000, () => {
        const p = k.getJson<{
          status?: { ancestors?: Array<{ controllerName: string; conditions: Condition[] }> };
        }>(["clienttrafficpolicy", "behind-lb", "-n", ns]);
        const c = condition(p.status?.ancestors?.[0]?.conditions, "Accepted");
        return c?.status === "True" ? c : undefined;
      });
      expect(accepted.message).to.include("clientIPDetection");
      const from = (client: string) =>
        httpGet(address, 80, "policies.example.com", "/per-client", {
          "x-forwarded-for": client,
        });
      // the probe client's own bucket shows the limit is served; the others start full
      await eventually("the per-client limit to be served", 60_000, async () =>
        (await from("192.0.2.99")).status === 429 ? true : undefined,
      );
      const alice = [];
      for (let i = 0; i < 3; i++) alice.push((await from("192.0.2.1")).status);
      expect(alice).to.deep.equal([200, 200, 429]);
      // a second client behind the same proxy (the same peer) has a bucket of its own
      expect((await from("192.0.2.2")).status).to.equal(200);
    });

    it("keeps a header's value on one endpoint (Maglev) and moves about 1/N of them when an endpoint is added", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: sticky}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: sticky}]
  loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: X-User}}}
`,
        ns,
      );
      await policyAccepted("sticky");
      const users = Array.from({ length: 80 }, (_, i) => `user-${i}`);
      const placement = async () => {
        const out = new Map<string, string>();
        for (const u of users)
          out.set(
            u,
            podOf(await httpGet(address, 80, "policies.example.com", "/sticky", { "x-user": u })),
          );
        return out;
      };
      // `pods` pods answering every user, and two rounds that agree on each: one round that
      // straddles a config swap (its first users placed on 3 pods, the rest on 4) would
      // count too few moves
      const settledPlacement = (what: string, pods: number) =>
        eventually(what, 120_000, async () => {
          const a = await placement();
          const b = await placement();
          const seen = new Set(a.values());
          return seen.size === pods &&
            [...seen].every(p => !p.startsWith("status")) &&
            users.every(u => a.get(u) === b.get(u))
            ? a
            : undefined;
        });
      const before = await settledPlacement("every user on one of 3 pods, twice the same", 3);
      k.kubectl(["scale", "deployment/sticky", "-n", ns, "--replicas=4"]);
      const after = await settledPlacement("a 4th pod taking its share, twice the same", 4);
      const added = [...new Set(after.values())].find(p => ![...before.values()].includes(p))!;
      const moved = users.filter(u => before.get(u) !== after.get(u));
      // Maglev moves about 1/4 of the keys, nearly all of them to the new endpoint
      expect(moved.length).to.be.within(8, 36);
      const toAdded = moved.filter(u => after.get(u) === added).length;
      expect(toAdded / moved.length, JSON.stringify(moved)).to.be.at.least(0.85);
    });

    it("takes an endpoint that fails its health check out of rotation, and brings it back", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: flaky-health}
spec:
  targetRefs: [{group: "", kind: Service, name: flaky}]
  healthCheck:
    active: {type: HTTP, http: {path: /healthz}, interval: 300ms, timeout: 250ms, unhealthyThreshold: 1, healthyThreshold: 1}
`,
        ns,
      );
      await policyAccepted("flaky-health");
      const pods = async (n: number) => {
        const seen: string[] = [];
        for (let i = 0; i < n; i++) seen.push(podOf(await get("policies.example.com", "/")));
        return seen;
      };
      await eventually("both flaky pods serving", 120_000, async () =>
        new Set(await pods(10)).size === 2 ? true : undefined,
      );
      const down = podOf(await get("policies.example.com", "/down?ms=8000"));
      // out within a few probes: only the other pod answers, and nothing fails
      const others = await eventually(`${down} out of rotation`, 6_000, async () => {
        const seen = await pods(12);
        return seen.every(p => p !== down) ? seen : undefined;
      });
      expect(new Set(others).size).to.equal(1);
      expect(others.every(p => !p.startsWith("status"))).to.equal(true);
      await eventually(`${down} back once its health check passes`, 30_000, async () =>
        (await pods(10)).includes(down) ? true : undefined,
      );
    });

    it("opens the circuit breaker on a failing backend (503 from the gateway), then closes it", async () => {
      k.apply(
        `
apiVersion: rauta.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: flaky-breaker}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: policies, sectionName: flaky}]
  circuitBreaker: {errorPercent: 50, minRequests: 5, window: 10s, openDuration: 3s, countErrorStatuses: true}
`,
        ns,
      );
      await policyAccepted("flaky-breaker");
      const opened = await eventually("the breaker to open", 60_000, async () => {
        for (let i = 0; i < 6; i++) await get("policies.example.com", "/status/500");
        const r = await get("policies.example.com", "/ok");
        return r.status === 503 && r.body.includes("circuit breaker open") ? r : undefined;
      });
      expect(opened.status).to.equal(503);
      await eventually("the breaker to close after openDuration", 30_000, async () =>
        (await get("policies.example.com", "/ok")).status === 200 ? true : undefined,
      );
    });
  });

  describe("restarts", () => {
    it("keeps serving from the last ConfigMap while the controller is down, and after the proxy restarts", async () => {
      k.apply(
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: steady}
spec:
  parentRefs: [{name: gw}]
  hostnames: [steady.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
`,
        ns,
      );
      await eventually("steady route serving", 60_000, async () =>
        (await get("steady.example.com", "/")).status === 200 ? true : undefined,
      );
      k.kubectl(["scale", "-n", "pepr-system", "deployment/pepr-rauta-watcher", "--replicas=0"]);
      try {
        await eventually("watcher pods gone", 60_000, () =>
          k.getJson<{ items: unknown[] }>([
            "pods",
            "-n",
            "pepr-system",
            "-l",
            "pepr.dev/controller=watcher",
          ]).items.length === 0
            ? true
            : undefined,
        );
        k.kubectl([
          "delete",
          "pod",
          "-n",
          "rauta-system",
          "-l",
          "app.kubernetes.io/name=rauta-proxy",
          "--wait=true",
        ]);
        await eventually(
          "the restarted proxy to serve the last config without the controller",
          120_000,
          async () => ((await get("steady.example.com", "/")).status === 200 ? true : undefined),
        );
      } finally {
        k.kubectl(["scale", "-n", "pepr-system", "deployment/pepr-rauta-watcher", "--replicas=1"]);
      }
      k.kubectl([
        "rollout",
        "status",
        "-n",
        "pepr-system",
        "deployment/pepr-rauta-watcher",
        "--timeout=180s",
      ]);
      k.kubectl([
        "patch",
        "httproute",
        "steady",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/spec/rules/0/matches","value":[{"path":{"type":"PathPrefix","value":"/after-restart"}}]}]',
      ]);
      // "/" stops matching only once the new config is served ("/after-restart" matched before too).
      await eventually("the restarted controller to publish changes", 120_000, async () =>
        (await get("steady.example.com", "/")).status === 404 ? true : undefined,
      );
      expect((await get("steady.example.com", "/after-restart")).status).to.equal(200);
    });
  });
});
