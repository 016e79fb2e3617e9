// ClientTrafficPolicy specs → a socket's client settings, section by section, and what
// admission refuses (the same function decides both).
import { expect } from "chai";
import { parse } from "yaml";
import { validateClientTrafficPolicy } from "../../../capabilities/admission/client-traffic-policy.ts";
import { compileClientSpec } from "../../../capabilities/compiler/client-policies.ts";
import type { ClientTrafficPolicy } from "../../../capabilities/compiler/snapshot.ts";

const GATEWAY = "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n";
type Spec = ClientTrafficPolicy["spec"];

const settings = (yaml: string) => {
  const out = compileClientSpec(parse(GATEWAY + yaml) as Spec);
  if (Array.isArray(out)) throw new Error(out.map(p => p.message).join("; "));
  return out;
};
const refused = (yaml: string, targets = GATEWAY) =>
  validateClientTrafficPolicy({
    apiVersion: "rauta.io/v1alpha1",
    kind: "ClientTrafficPolicy",
    metadata: { name: "c", namespace: "edge" },
    spec: parse(targets + yaml) as Spec,
  } as ClientTrafficPolicy);

describe("ClientTrafficPolicy settings", () => {
  it("clientIPDetection: the number of trusted X-Forwarded-For hops", () => {
    expect(
      settings("clientIPDetection: {xForwardedFor: {numTrustedHops: 2}}").clientIPDetection,
    ).to.deep.equal({ trustedHops: 2 });
  });

  it("proxyProtocol: required unless optional is set", () => {
    expect(settings("proxyProtocol: {}").proxyProtocol).to.deep.equal({ optional: false });
    expect(settings("proxyProtocol: {optional: true}").proxyProtocol).to.deep.equal({
      optional: true,
    });
    expect(settings("timeout: {idle: 1s}").proxyProtocol).to.equal(undefined);
  });

  it("timeout: durations in milliseconds, 0s turning the request and idle timeouts off", () => {
    expect(settings("timeout: {requestHeaders: 5s, request: 0s, idle: 90s}").timeout).to.deep.equal(
      {
        requestHeadersTimeoutMs: 5000,
        requestTimeoutMs: 0,
        idleTimeoutMs: 90_000,
      },
    );
  });

  it("refuses a request-headers timeout of 0s or longer than the whole request's", () => {
    expect(refused("timeout: {requestHeaders: 0s}")[0]).to.include(
      "spec.timeout.requestHeaders: 0s would leave slow clients holding connections for ever",
    );
    expect(refused("timeout: {requestHeaders: 1m, request: 30s}")).to.deep.equal([
      "ClientTrafficPolicy edge/c: spec.timeout.requestHeaders (1m) is longer than spec.timeout.request (30s), which includes the head",
    ]);
  });

  it("limits and http2 map to the config's byte and count fields", () => {
    expect(
      settings("limits: {maxHeaderSize: 32768, maxHeaderCount: 64, maxRequestBodySize: 0}").limits,
    ).to.deep.equal({ maxHeaderBytes: 32768, maxHeaderCount: 64, maxRequestBodyBytes: 0 });
    expect(
      settings(
        "http2: {maxConcurrentStreams: 10, initialStreamWindowSize: 1048576, initialConnectionWindowSize: 4194304}",
      ).http2,
    ).to.deep.equal({
      maxConcurrentStreams: 10,
      initialStreamWindowBytes: 1_048_576,
      initialConnectionWindowBytes: 4_194_304,
    });
  });

  it("path, with the secure defaults for what is left out", () => {
    expect(settings("path: {mergeSlashes: false}").path).to.deep.equal({
      mergeSlashes: false,
      escapedSlashes: "UnescapeAndRedirect",
    });
  });

  it("refuses a policy that sets nothing and a repeated target", () => {
    expect(refused("")[0]).to.include("spec sets nothing");
    expect(
      refused(
        "path: {mergeSlashes: true}",
        "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: a}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: a}]\n",
      ),
    ).to.deep.equal([
      "ClientTrafficPolicy edge/c: spec.targetRefs[1]: the same target as an earlier entry",
    ]);
  });

  it("tracing: the collector URL, the share of new traces as a ratio, and the defaults", () => {
    expect(settings("tracing: {endpoint: 'http://otel.observability:4318'}").tracing).to.deep.equal(
      {
        endpoint: "http://otel.observability:4318/",
        samplingRatio: 1,
        parentBased: true,
        serviceName: "rauta",
      },
    );
    expect(
      settings("tracing: {endpoint: 'https://c/v1/traces', samplingRate: 1, parentBased: false}")
        .tracing,
    ).to.include({ samplingRatio: 0.01, parentBased: false });
    expect(
      settings(
        "tracing: {endpoint: 'http://c:4318', samplingFraction: {numerator: 1, denominator: 1000}, serviceName: edge}",
      ).tracing,
    ).to.include({ samplingRatio: 0.001, serviceName: "edge" });
  });

  it("refuses tracing it cannot export: no http(s) URL, credentials in it, two shares, a share past 1", () => {
    expect(refused("tracing: {endpoint: 'grpc://c:4317'}")).to.deep.equal([
      'ClientTrafficPolicy edge/c: spec.tracing.endpoint: "grpc://c:4317" must be an http:// or https:// URL (OTLP/HTTP)',
    ]);
    expect(refused("tracing: {endpoint: 'http://[c'}")[0]).to.include("is not a URL");
    expect(refused("tracing: {endpoint: 'http://u:p@c:4318'}")[0]).to.include(
      "credentials in the URL",
    );
    expect(
      refused("tracing: {endpoint: 'http://c', samplingRate: 5, samplingFraction: {numerator: 1}}"),
    ).to.deep.equal([
      "ClientTrafficPolicy edge/c: spec.tracing: give samplingRate or samplingFraction, not both",
    ]);
    expect(
      refused("tracing: {endpoint: 'http://c', samplingFraction: {numerator: 3, denominator: 2}}"),
    ).to.deep.equal([
      "ClientTrafficPolicy edge/c: spec.tracing.samplingFraction: 3/2 is not a share between 0 and 1",
    ]);
  });
});
