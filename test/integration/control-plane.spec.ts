// End to end through the real API (hack/cluster): the user's install (npm run deploy:local),
// then Gateway API objects → statuses → traffic through the proxy to echo-basic pods; admission
// messages; ReferenceGrant enforcement; controller and proxy restarts.
import { expect } from "chai";
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
