// fast-check arbitraries for random, schema-valid compiler snapshots: small vocabularies of
// names, hosts and services so objects actually refer to each other.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Snapshot } from "../../capabilities/compiler/index.ts";

const NAMESPACES = ["default", "app", "infra"];
const HOSTS = [
  "example.com",
  "a.example.com",
  "*.example.com",
  "b.a.example.com",
  "*.a.example.com",
  "other.net",
];
const SERVICES = ["svc-a", "svc-b", "svc-c"];

const schema = (file: string) =>
  z.fromJSONSchema(
    JSON.parse(
      readFileSync(
        new URL(`../../generated/gateway-api/experimental/${file}`, import.meta.url),
        "utf8",
      ),
    ),
  );
const gatewaySchema = schema("gateway-v1.schema.json");
const routeSchema = schema("httproute-v1.schema.json");

const meta = (kind: string) =>
  fc.record({
    name: fc.constantFrom(`${kind}-1`, `${kind}-2`, `${kind}-3`),
    namespace: fc.constantFrom(...NAMESPACES),
    generation: fc.integer({ min: 1, max: 5 }),
    creationTimestamp: fc.constantFrom(
      "2026-01-01T00:00:00Z",
      "2026-02-01T00:00:00Z",
      "2026-03-01T00:00:00Z",
    ),
  });

const listener = fc.record(
  {
    name: fc.constantFrom("l1", "l2", "l3", "l4"),
    port: fc.constantFrom(80, 443, 8080),
    protocol: fc.oneof(
      { arbitrary: fc.constant("HTTP"), weight: 6 },
      { arbitrary: fc.constant("HTTPS"), weight: 2 },
      { arbitrary: fc.constant("TCP"), weight: 1 },
    ),
    hostname: fc.constantFrom(...HOSTS),
    allowedRoutes: fc.record(
      {
        namespaces: fc.oneof(
          { arbitrary: fc.record({ from: fc.constant("All") }), weight: 4 },
          fc.record({ from: fc.constant("Same") }),
          fc.record({
            from: fc.constant("Selector"),
            selector: fc.record({
              matchLabels: fc.record({
                "kubernetes.io/metadata.name": fc.constantFrom(...NAMESPACES),
              }),
            }),
          }),
        ),
      },
      { requiredKeys: [] },
    ),
    tls: fc.record({
      certificateRefs: fc.array(
        fc.record({
          name: fc.constantFrom("cert", "cert", "missing"),
          namespace: fc.constantFrom("infra", "infra", "app"),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    }),
  },
  { requiredKeys: ["name", "port", "protocol", "tls"] },
);

const gateway = fc.record({
  apiVersion: fc.constant("gateway.networking.k8s.io/v1"),
  kind: fc.constant("Gateway"),
  metadata: meta("gw").map(m => ({
    ...m,
    namespace: m.namespace === "app" ? "infra" : m.namespace,
  })),
  spec: fc.record({
    gatewayClassName: fc.constantFrom("rauta", "rauta", "rauta", "other"),
    listeners: fc.uniqueArray(listener, { minLength: 1, maxLength: 3, selector: l => l.name }),
  }),
});

const pathMatch = fc.oneof(
  fc.record({ type: fc.constant("PathPrefix"), value: fc.constantFrom("/", "/a", "/a/", "/a/b") }),
  fc.record({ type: fc.constant("Exact"), value: fc.constantFrom("/", "/a", "/a/b") }),
  fc.record({
    type: fc.constant("RegularExpression"),
    value: fc.constantFrom("/a/[0-9]+", "/(?=x)", "/.*"),
  }),
);
const match = fc.record(
  {
    path: pathMatch,
    method: fc.constantFrom("GET", "POST"),
    headers: fc.array(
      fc.record({ name: fc.constantFrom("x-a", "X-B"), value: fc.constantFrom("1", "2") }),
      { maxLength: 2 },
    ),
    queryParams: fc.array(
      fc.record({ name: fc.constantFrom("q", "Q"), value: fc.constantFrom("1", "2") }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);
const backendRef = fc.record(
  {
    name: fc.constantFrom(...SERVICES, "missing"),
    namespace: fc.constantFrom(...NAMESPACES),
    port: fc.constantFrom(80, 8080),
    weight: fc.integer({ min: 0, max: 3 }),
  },
  { requiredKeys: ["name", "port"] },
);
const filter = fc.oneof(
  fc.record({
    type: fc.constant("RequestHeaderModifier"),
    requestHeaderModifier: fc.record({ set: fc.constant([{ name: "x-set", value: "v" }]) }),
  }),
  fc.record({
    type: fc.constant("URLRewrite"),
    urlRewrite: fc.record({
      path: fc.record({
        type: fc.constant("ReplacePrefixMatch"),
        replacePrefixMatch: fc.constant("/new"),
      }),
    }),
  }),
  fc.record({
    type: fc.constant("ExtensionRef"),
    extensionRef: fc.record({
      group: fc.constant("rauta.io"),
      kind: fc.constant("RautaPlugin"),
      name: fc.constantFrom("auth", "nope"),
    }),
  }),
);
const rule = fc.record(
  {
    matches: fc.array(match, { minLength: 1, maxLength: 2 }),
    filters: fc.array(filter, { maxLength: 2 }),
    backendRefs: fc.array(backendRef, { maxLength: 3 }),
    timeouts: fc.record(
      { request: fc.constantFrom("10s", "1m"), backendRequest: fc.constantFrom("5s", "2m") },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const route = fc.record({
  apiVersion: fc.constant("gateway.networking.k8s.io/v1"),
  kind: fc.constant("HTTPRoute"),
  metadata: meta("route"),
  spec: fc.record(
    {
      parentRefs: fc.array(
        fc.record(
          {
            name: fc.constantFrom("gw-1", "gw-2"),
            namespace: fc.constantFrom("infra", "infra", "default"),
            sectionName: fc.oneof(
              { arbitrary: fc.constantFrom("l1", "l2", "nope"), weight: 1 },
              { arbitrary: fc.constant(undefined), weight: 3 },
            ),
            port: fc.oneof(
              { arbitrary: fc.constantFrom(80, 443), weight: 1 },
              { arbitrary: fc.constant(undefined), weight: 3 },
            ),
          },
          { requiredKeys: ["name", "namespace"] },
        ),
        { minLength: 1, maxLength: 2 },
      ),
      hostnames: fc.uniqueArray(fc.constantFrom(...HOSTS.filter(h => h !== "*")), { maxLength: 2 }),
      rules: fc.array(rule, { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: ["parentRefs"] },
  ),
});

const fixedObjects = (): Omit<Snapshot, "gateways" | "httpRoutes"> => ({
  gatewayClasses: [
    {
      metadata: { name: "rauta", generation: 1 },
      spec: { controllerName: "rauta.io/gateway-controller" },
    },
    { metadata: { name: "other", generation: 1 }, spec: { controllerName: "example.com/other" } },
  ],
  referenceGrants: [
    {
      metadata: { name: "grant", namespace: "infra" },
      spec: {
        from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "app" }],
        to: [{ group: "", kind: "Service" }],
      },
    },
  ],
  services: NAMESPACES.flatMap(namespace =>
    SERVICES.map(name => ({
      metadata: { name, namespace },
      spec: {
        ports: [
          { name: "http", port: 80 },
          { name: "alt", port: 8080, appProtocol: "kubernetes.io/h2c" },
        ],
      },
    })),
  ),
  endpointSlices: NAMESPACES.flatMap(namespace =>
    SERVICES.map((name, i) => ({
      metadata: { name: `${name}-x`, namespace, labels: { "kubernetes.io/service-name": name } },
      addressType: "IPv4",
      ports: [
        { name: "http", port: 9000 },
        { name: "alt", port: 9001 },
      ],
      endpoints: [{ addresses: [`10.0.${i}.1`, `10.0.${i}.2`], conditions: { ready: i !== 1 } }],
    })),
  ),
  secrets: [
    {
      metadata: { name: "cert", namespace: "infra" },
      type: "kubernetes.io/tls",
      keys: ["tls.crt", "tls.key"],
    },
  ],
  namespaces: NAMESPACES.map(name => ({ metadata: { name, labels: { team: name } } })),
  rautaPlugins: [
    { metadata: { name: "auth", namespace: "app" }, spec: { source: { builtin: "jwt-auth" } } },
  ],
});

export const snapshotArbitrary = fc
  .record({
    gateways: fc.uniqueArray(gateway, {
      maxLength: 3,
      selector: g => `${g.metadata.namespace}/${g.metadata.name}`,
    }),
    httpRoutes: fc.uniqueArray(route, {
      maxLength: 5,
      selector: r => `${r.metadata.namespace}/${r.metadata.name}`,
    }),
  })
  .filter(
    ({ gateways, httpRoutes }) =>
      gateways.every(g => gatewaySchema.safeParse(g).success) &&
      httpRoutes.every(r => routeSchema.safeParse(r).success),
  )
  .map(({ gateways, httpRoutes }) => ({ ...fixedObjects(), gateways, httpRoutes }) as Snapshot);
