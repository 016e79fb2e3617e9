// SecurityPolicy specs → a route's authorization, and what admission refuses (the same function
// decides both).
import { expect } from "chai";
import { parse } from "yaml";
import { validateSecurityPolicy } from "../../../capabilities/admission/security-policy.ts";
import { compileSecuritySpec } from "../../../capabilities/compiler/security-settings.ts";
import type { SecurityPolicy } from "../../../capabilities/compiler/snapshot.ts";

const GATEWAY = "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n";
type Spec = SecurityPolicy["spec"];

const settings = (yaml: string) => {
  const out = compileSecuritySpec(parse(GATEWAY + yaml) as Spec, { namespace: "edge", name: "s" });
  if (Array.isArray(out)) throw new Error(out.map(p => p.message).join("; "));
  return out;
};
const refused = (yaml: string, targets = GATEWAY) =>
  validateSecurityPolicy({
    apiVersion: "rauta.io/v1alpha1",
    kind: "SecurityPolicy",
    metadata: { name: "s", namespace: "edge" },
    spec: parse(targets + yaml) as Spec,
  } as SecurityPolicy);

describe("SecurityPolicy settings", () => {
  it("an allow list denies everyone else; a deny list lets everyone else through", () => {
    expect(
      settings(
        "authorization: {rules: [{action: Allow, principal: {clientCIDRs: ['10.0.0.0/8']}}]}",
      ).authorization,
    ).to.deep.equal({ defaultAction: "Deny", rules: [{ action: "Allow", cidrs: ["10.0.0.0/8"] }] });
    expect(
      settings(
        "authorization: {rules: [{action: Deny, principal: {clientCIDRs: ['192.0.2.0/24']}}]}",
      ).authorization?.defaultAction,
    ).to.equal("Allow");
    expect(
      settings(
        "authorization: {defaultAction: Allow, rules: [{action: Allow, principal: {clientCIDRs: ['10.0.0.0/8']}}]}",
      ).authorization?.defaultAction,
    ).to.equal("Allow");
  });

  it("writes a bare address as one host, IPv4 and IPv6", () => {
    expect(
      settings(
        "authorization: {rules: [{action: Allow, principal: {clientCIDRs: ['198.51.100.7', '2001:db8::1', '2001:db8::/32']}}]}",
      ).authorization?.rules[0]?.cidrs,
    ).to.deep.equal(["198.51.100.7/32", "2001:db8::1/128", "2001:db8::/32"]);
  });

  it("closes the routes with defaultAction Deny and no rules", () => {
    expect(settings("authorization: {defaultAction: Deny}").authorization).to.deep.equal({
      defaultAction: "Deny",
      rules: [],
    });
  });

  it("refuses ranges that are not ranges, an authorization with nothing to decide, and nothing set", () => {
    expect(
      refused(
        "authorization: {rules: [{action: Deny, principal: {clientCIDRs: ['10.0.0.0/33', 'intranet', '::/129']}}]}",
      ),
    ).to.deep.equal([
      'SecurityPolicy edge/s: spec.authorization.rules[0].principal.clientCIDRs: "10.0.0.0/33": the prefix length must be 0 to 32',
      'SecurityPolicy edge/s: spec.authorization.rules[0].principal.clientCIDRs: "intranet": "intranet" is not an IP address',
      'SecurityPolicy edge/s: spec.authorization.rules[0].principal.clientCIDRs: "::/129": the prefix length must be 0 to 128',
    ]);
    expect(refused("authorization: {}")).to.deep.equal([
      "SecurityPolicy edge/s: spec.authorization: give rules, or a defaultAction (Deny closes the routes to everyone)",
    ]);
    expect(refused("")).to.deep.equal([
      "SecurityPolicy edge/s: spec sets nothing: give authorization, basicAuth, apiKeyAuth or signIn",
    ]);
  });

  it("signIn: an http(s) URL or a path, with the variables ingress-nginx users know", () => {
    expect(
      settings(
        "signIn: {url: 'https://auth.example.com/oauth2/start?rd=$scheme://$host$escaped_request_uri'}",
      ).signIn,
    ).to.deep.equal({
      url: "https://auth.example.com/oauth2/start?rd=$scheme://$host$escaped_request_uri",
    });
    expect(settings("signIn: {url: '/oauth2/start?rd=$request_uri'}").signIn?.url).to.equal(
      "/oauth2/start?rd=$request_uri",
    );
    expect(refused("signIn: {url: 'https://a/?rd=$uri'}")[0]).to.include(
      "$uri is not one of $scheme, $host, $request_uri, $escaped_request_uri",
    );
    for (const url of ["ftp://a/", "login", "//evil.example/x"])
      expect(refused(`signIn: {url: '${url}'}`)[0], url).to.include(
        "not an absolute http(s) URL or a path starting with /",
      );
  });

  it("basicAuth: the users' Secret in the policy's namespace by default, the realm the policy's name", () => {
    expect(settings("basicAuth: {users: {name: staff}}").basicAuth).to.deep.equal({
      secretRef: { namespace: "edge", name: "staff" },
      realm: "s",
    });
    expect(
      settings(
        "basicAuth: {users: {name: staff, namespace: auth}, realm: Staff only, forwardUsernameHeader: X-User}",
      ).basicAuth,
    ).to.deep.equal({
      secretRef: { namespace: "auth", name: "staff" },
      realm: "Staff only",
      forwardUsernameHeader: "X-User",
    });
  });

  it("apiKeyAuth: every extractFrom entry filled in, sanitize off by default; a key looked for nowhere or overwritten by the client id refused", () => {
    expect(
      settings(
        "apiKeyAuth: {credentialRefs: [{name: keys}, {name: more, namespace: shared}], extractFrom: [{headers: [x-api-key]}, {params: [key], cookies: [k]}], forwardClientIDHeader: X-Client}",
      ).apiKeyAuth,
    ).to.deep.equal({
      secretRefs: [
        { namespace: "edge", name: "keys" },
        { namespace: "shared", name: "more" },
      ],
      extractFrom: [
        { headers: ["x-api-key"], params: [], cookies: [] },
        { headers: [], params: ["key"], cookies: ["k"] },
      ],
      forwardClientIdHeader: "X-Client",
      sanitize: false,
    });
    expect(
      refused("apiKeyAuth: {credentialRefs: [{name: keys}], extractFrom: [{}]}"),
    ).to.deep.equal([
      "SecurityPolicy edge/s: spec.apiKeyAuth.extractFrom[0]: name a header, a query parameter or a cookie the key is in",
    ]);
    expect(
      refused(
        "apiKeyAuth: {credentialRefs: [{name: keys}], extractFrom: [{headers: [X-Key]}], forwardClientIDHeader: x-key}",
      )[0],
    ).to.include("forwardClientIDHeader: x-key is where the key is looked for too");
  });

  it("refuses a target named twice", () => {
    expect(
      refused(
        "authorization: {defaultAction: Deny}",
        "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n",
      )[0],
    ).to.include("spec.targetRefs[1]: the same target as an earlier entry");
  });
});
