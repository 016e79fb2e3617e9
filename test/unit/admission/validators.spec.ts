// Admission validators: each invalid object is rejected with a message naming the object, the
// field and the fix; its valid twin passes.
import { expect } from "chai";
import { validateGateway } from "../../../capabilities/admission/gateway.ts";
import { validateGRPCRoute } from "../../../capabilities/admission/grpc-route.ts";
import { validateHTTPRoute } from "../../../capabilities/admission/http-route.ts";
import { validateRautaPlugin } from "../../../capabilities/admission/rauta-plugin.ts";
import type {
  Gateway,
  GRPCRoute,
  GRPCRouteMatch,
  HTTPRoute,
  HTTPRouteRule,
  RautaPlugin,
} from "../../../capabilities/compiler/index.ts";

const route = (rules: HTTPRouteRule[], annotations?: Record<string, string>): HTTPRoute => ({
  metadata: { name: "api", namespace: "shop", ...(annotations ? { annotations } : {}) },
  spec: { parentRefs: [{ name: "gw" }], rules },
});
const backend = { backendRefs: [{ name: "api", port: 80 }] };
const grpcRoute = (method: GRPCRouteMatch["method"]): GRPCRoute => ({
  metadata: { name: "api", namespace: "shop" },
  spec: { parentRefs: [{ name: "gw" }], rules: [{ matches: [{ method }], ...backend }] },
});

const gateway = (listeners: Gateway["spec"]["listeners"]): Gateway => ({
  metadata: { name: "gw", namespace: "infra" },
  spec: { gatewayClassName: "rauta", listeners },
});

const plugin = (
  config: Record<string, unknown>,
  configSchema?: Record<string, unknown>,
): RautaPlugin => ({
  metadata: { name: "auth", namespace: "shop" },
  spec: { source: { builtin: "jwt-auth" }, config, ...(configSchema ? { configSchema } : {}) },
});

interface Case {
  name: string;
  invalid: () => string[];
  valid: () => string[];
  message: RegExp;
}

const cases: Case[] = [
  {
    name: "HTTPRoute path regex with lookahead (not RE2)",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ path: { type: "RegularExpression", value: "/api/(?!internal).*" } }],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          { matches: [{ path: { type: "RegularExpression", value: "/api/[a-z]+" } }], ...backend },
        ]),
      ),
    message:
      /^HTTPRoute shop\/api: spec\.rules\[0\]\.matches\[0\]\.path\.value: regular expression "\/api\/\(\?!internal\)\.\*" is not valid RE2 \(linear-time\) syntax/,
  },
  {
    name: "HTTPRoute header regex with a backreference",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ headers: [{ name: "x-id", type: "RegularExpression", value: "(a)\\1" }] }],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ headers: [{ name: "x-id", type: "RegularExpression", value: "(a)+" }] }],
            ...backend,
          },
        ]),
      ),
    message:
      /spec\.rules\[0\]\.matches\[0\]\.headers\[0\]: regular expression "\(a\)\\\\1" is not valid RE2/,
  },
  {
    name: "HTTPRoute query param regex that does not compile",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ queryParams: [{ name: "q", type: "RegularExpression", value: "[a-" }] }],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ queryParams: [{ name: "q", type: "RegularExpression", value: "[a-z]" }] }],
            ...backend,
          },
        ]),
      ),
    message:
      /spec\.rules\[0\]\.matches\[0\]\.queryParams\[0\]: regular expression "\[a-" is not valid RE2/,
  },
  {
    name: "HTTPRoute rule with RequestRedirect and URLRewrite",
    invalid: () =>
      validateHTTPRoute(
        route([
          { ...backend },
          {
            filters: [
              { type: "RequestRedirect", requestRedirect: { scheme: "https" } },
              { type: "URLRewrite", urlRewrite: { hostname: "x.example.com" } },
            ],
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          { ...backend },
          { filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https" } }] },
        ]),
      ),
    message:
      /^HTTPRoute shop\/api: spec\.rules\[1\]\.filters: RequestRedirect and URLRewrite cannot be used in the same rule$/,
  },
  {
    name: "HTTPRoute ReplacePrefixMatch on an Exact match",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ path: { type: "Exact", value: "/old" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" } },
              },
            ],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          {
            matches: [{ path: { type: "PathPrefix", value: "/old" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" } },
              },
            ],
            ...backend,
          },
        ]),
      ),
    message:
      /spec\.rules\[0\]\.filters\[0\]\.path: ReplacePrefixMatch needs every match of the rule to be a PathPrefix match/,
  },
  {
    name: "HTTPRoute with the same header modifier twice",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "a", value: "1" }] },
              },
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "b", value: "2" }] },
              },
            ],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          {
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: {
                  set: [
                    { name: "a", value: "1" },
                    { name: "b", value: "2" },
                  ],
                },
              },
            ],
            ...backend,
          },
        ]),
      ),
    message: /spec\.rules\[0\]\.filters\[1\]: RequestHeaderModifier may appear only once per rule/,
  },
  {
    name: "HTTPRoute header named in both set and remove",
    invalid: () =>
      validateHTTPRoute(
        route([
          {
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "X-A", value: "1" }], remove: ["x-a"] },
              },
            ],
            ...backend,
          },
        ]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([
          {
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "X-A", value: "1" }], remove: ["x-b"] },
              },
            ],
            ...backend,
          },
        ]),
      ),
    message:
      /spec\.rules\[0\]\.filters\[0\]: header x-a is named more than once across set, add and remove/,
  },
  {
    name: "HTTPRoute backendRequest timeout longer than request timeout",
    invalid: () =>
      validateHTTPRoute(
        route([{ timeouts: { request: "5s", backendRequest: "10s" }, ...backend }]),
      ),
    valid: () =>
      validateHTTPRoute(
        route([{ timeouts: { request: "10s", backendRequest: "5s" }, ...backend }]),
      ),
    message: /spec\.rules\[0\]\.timeouts: backendRequest \(10s\) must not exceed request \(5s\)/,
  },
  {
    name: "HTTPRoute rauta.io/plugins annotation that does not parse",
    invalid: () =>
      validateHTTPRoute(route([{ ...backend }], { "rauta.io/plugins": "auth, Bad_Name" })),
    valid: () =>
      validateHTTPRoute(route([{ ...backend }], { "rauta.io/plugins": "auth, rate-limit" })),
    message:
      /metadata\.annotations: annotation rauta\.io\/plugins: "Bad_Name" is not a valid RautaPlugin name; use a comma-separated list of RautaPlugin names/,
  },
  {
    name: "Gateway with an HTTPS listener that names no certificate",
    invalid: () => validateGateway(gateway([{ name: "secure", port: 443, protocol: "HTTPS" }])),
    valid: () =>
      validateGateway(
        gateway([
          {
            name: "secure",
            port: 443,
            protocol: "HTTPS",
            tls: { certificateRefs: [{ name: "cert" }] },
          },
        ]),
      ),
    message:
      /^Gateway infra\/gw: spec\.listeners\[0\] \(secure\): HTTPS needs tls\.certificateRefs naming a kubernetes\.io\/tls Secret$/,
  },
  {
    name: "Gateway with a TLS listener in mode Terminate (the default) that names no certificate",
    invalid: () => validateGateway(gateway([{ name: "tls", port: 8443, protocol: "TLS" }])),
    valid: () =>
      validateGateway(
        gateway([{ name: "tls", port: 8443, protocol: "TLS", tls: { mode: "Passthrough" } }]),
      ),
    message:
      /^Gateway infra\/gw: spec\.listeners\[0\] \(tls\): TLS in mode Terminate \(the default\) needs tls\.certificateRefs .*set tls\.mode Passthrough/,
  },
  {
    name: "GRPCRoute whose method pattern is not RE2",
    invalid: () => validateGRPCRoute(grpcRoute({ type: "RegularExpression", service: "(a+)+\\1" })),
    valid: () =>
      validateGRPCRoute(grpcRoute({ type: "RegularExpression", service: "echo\\.v[0-9]+" })),
    message:
      /^GRPCRoute shop\/api: spec\.rules\[0\]\.matches\[0\]\.method\.service: regular expression .* is not valid RE2/,
  },
  {
    name: "RautaPlugin whose config does not match its schema",
    invalid: () =>
      validateRautaPlugin(
        plugin(
          { issuer: 42 },
          { type: "object", properties: { issuer: { type: "string" } }, required: ["issuer"] },
        ),
      ),
    valid: () =>
      validateRautaPlugin(
        plugin(
          { issuer: "https://id.example.com" },
          { type: "object", properties: { issuer: { type: "string" } }, required: ["issuer"] },
        ),
      ),
    message:
      /^RautaPlugin shop\/auth: spec\.config\.issuer: Invalid input: expected string, received number$/,
  },
];

describe("admission validators", () => {
  for (const c of cases) {
    it(`rejects ${c.name}, accepts its valid twin`, () => {
      const problems = c.invalid();
      expect(problems, "problems").to.have.length.greaterThan(0);
      expect(
        problems.some(p => c.message.test(p)),
        problems.join("\n"),
      ).to.equal(true);
      expect(c.valid()).to.deep.equal([]);
    });
  }

  it("admits what RAUTA does not serve and listeners that conflict: the listener's status says so", () => {
    // compiler fixtures listener-unsupported-protocol and listener-protocol-conflict show the status
    expect(validateGateway(gateway([{ name: "db", port: 5432, protocol: "TCP" }]))).to.deep.equal(
      [],
    );
    expect(
      validateGateway(
        gateway([
          { name: "web", port: 8443, protocol: "HTTP" },
          {
            name: "secure",
            port: 8443,
            protocol: "HTTPS",
            tls: { certificateRefs: [{ name: "cert" }] },
          },
          { name: "again", port: 8443, protocol: "HTTP" },
        ]),
      ),
    ).to.deep.equal([]);
  });

  it("does not reject what depends on other objects (missing Service, missing plugin)", () => {
    const problems = validateHTTPRoute(
      route([
        {
          filters: [
            {
              type: "ExtensionRef",
              extensionRef: { group: "rauta.io", kind: "RautaPlugin", name: "not-yet" },
            },
          ],
          backendRefs: [{ name: "not-yet", namespace: "other", port: 80 }],
        },
      ]),
    );
    expect(problems).to.deep.equal([]);
  });
});
