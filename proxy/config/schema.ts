// CompiledConfig: the only contract between the control plane (compiler) and the proxy.
// It lives with its consumer (as Envoy owns xDS). Data only: everything the proxy needs to route,
// already resolved and precedence-sorted, nothing it would have to look up in Kubernetes except
// Secrets (TLS key pairs, basic-auth users, API keys), which are referenced and never embedded:
// private keys and credentials never go into a ConfigMap.
import { z } from "zod";

import { CONFIG_API_VERSION } from "./version.ts";
import { parseCidr } from "./cidr.ts";

export { CONFIG_API_VERSION };

const port = z.number().int().min(1).max(65535);
const headerName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/, "not an HTTP token");
// Durations are plain milliseconds: the compiler parses Gateway API duration strings once.
const millis = z.number().int().min(0);

export const ObjectRef = z.object({ namespace: z.string(), name: z.string() }).strict();
export type ObjectRef = z.infer<typeof ObjectRef>;

// Regular expressions use RE2 syntax and full-match semantics (as Envoy's safe_regex): the
// compiler has already rejected patterns that need backtracking.
export const PathMatch = z.discriminatedUnion("type", [
  z.object({ type: z.literal("Exact"), value: z.string().startsWith("/") }).strict(),
  z.object({ type: z.literal("PathPrefix"), value: z.string().startsWith("/") }).strict(),
  z.object({ type: z.literal("RegularExpression"), value: z.string() }).strict(),
]);
export type PathMatch = z.infer<typeof PathMatch>;

export const ValueMatch = z
  .object({
    name: z.string().min(1),
    type: z.enum(["Exact", "RegularExpression"]),
    value: z.string(),
  })
  .strict();
export type ValueMatch = z.infer<typeof ValueMatch>;

export const RouteMatch = z
  .object({
    path: PathMatch,
    // Header names are lowercased by the compiler (HTTP header names are case-insensitive).
    headers: z.array(ValueMatch),
    // Query parameter names are case-sensitive and matched exactly.
    queryParams: z.array(ValueMatch),
    method: z.string().min(1).optional(),
  })
  .strict();
export type RouteMatch = z.infer<typeof RouteMatch>;

const HeaderValue = z.object({ name: headerName, value: z.string() }).strict();
export const HeaderModifier = z
  .object({ set: z.array(HeaderValue), add: z.array(HeaderValue), remove: z.array(headerName) })
  .strict();
export type HeaderModifier = z.infer<typeof HeaderModifier>;

export const PathModifier = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ReplaceFullPath"), value: z.string() }).strict(),
  // Replaces the PathPrefix the request matched (the proxy knows which match it was).
  z.object({ type: z.literal("ReplacePrefixMatch"), value: z.string() }).strict(),
]);
export type PathModifier = z.infer<typeof PathModifier>;

export const Filter = z.discriminatedUnion("type", [
  z.object({ type: z.literal("RequestHeaderModifier"), ...HeaderModifier.shape }).strict(),
  z.object({ type: z.literal("ResponseHeaderModifier"), ...HeaderModifier.shape }).strict(),
  z
    .object({
      type: z.literal("RequestRedirect"),
      scheme: z.enum(["http", "https"]).optional(),
      hostname: z.string().optional(),
      port: port.optional(),
      path: PathModifier.optional(),
      statusCode: z.union([
        z.literal(301),
        z.literal(302),
        z.literal(303),
        z.literal(307),
        z.literal(308),
      ]),
    })
    .strict(),
  z
    .object({
      type: z.literal("URLRewrite"),
      hostname: z.string().optional(),
      path: PathModifier.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal("RequestMirror"),
      clusterId: z.string(),
      // Share of requests mirrored, as numerator/denominator (percent p is p/100).
      numerator: z.number().int().min(0),
      denominator: z.number().int().min(1),
    })
    .strict(),
  z
    .object({
      type: z.literal("CORS"),
      allowOrigins: z.array(z.string()),
      allowMethods: z.array(z.string()),
      allowHeaders: z.array(z.string()),
      exposeHeaders: z.array(z.string()),
      allowCredentials: z.boolean(),
      maxAgeSeconds: z.number().int().min(0),
    })
    .strict(),
  z.object({ type: z.literal("Plugin"), pluginId: z.string() }).strict(),
  // Gateway API ExternalAuth (GEP-1494), HTTP protocol: each request is first sent to the auth
  // service (its method, pathPrefix + path, Host, Authorization and allowedHeaders, no body); a
  // 2xx lets it through with allowedResponseHeaders (all but Host when empty) copied onto it,
  // any other answer goes back to the client as it is; no answer in time: 403 (fail closed)
  z
    .object({
      type: z.literal("ExternalAuth"),
      clusterId: z.string(),
      // GRPC: Envoy's ext_authz Check (envoy.service.auth.v3) over the cluster's HTTP/2, every
      // header sent unless allowedHeaders lists some; absent: HTTP
      protocol: z.literal("GRPC").optional(),
      pathPrefix: z.string(),
      allowedHeaders: z.array(headerName),
      allowedResponseHeaders: z.array(headerName),
      timeoutMs: z.number().int().min(1),
      // forwardBody.maxSize: the request body goes to the auth service too; a longer one is 413
      forwardBodyBytes: z.number().int().min(1).optional(),
    })
    .strict(),
]);
export type Filter = z.infer<typeof Filter>;
export type FilterType = Filter["type"];

export const WeightedBackend = z
  .object({
    // null: the backendRef is invalid (missing Service, not permitted, …); the share of requests
    // the weight sends here is answered with HTTP 500, as the Gateway API spec requires.
    clusterId: z.string().nullable(),
    weight: z.number().int().min(0),
    filters: z.array(Filter),
  })
  .strict();
export type WeightedBackend = z.infer<typeof WeightedBackend>;

export const Retry = z
  .object({
    attempts: z.number().int().min(0),
    codes: z.array(z.number().int().min(400).max(599)),
    backoffMs: millis.optional(),
  })
  .strict();
export type Retry = z.infer<typeof Retry>;

// Local rate limit of a route (a BackendTrafficPolicy's rateLimit): a token bucket per key
// holding `burst` tokens, refilled with `requests` tokens every `intervalMs`. Over the limit: 429
// with Retry-After and the RateLimit headers.
export const RateLimit = z
  .object({
    requests: z.number().int().min(1),
    intervalMs: z.number().int().min(1),
    burst: z.number().int().min(1),
    // ClientIP: one bucket per client address (after trusted hops); Header: per value of the
    // (lowercased) header, requests without it share the "" bucket; Route: one bucket for all
    key: z.discriminatedUnion("type", [
      z.object({ type: z.literal("ClientIP") }).strict(),
      z.object({ type: z.literal("Header"), name: headerName }).strict(),
      z.object({ type: z.literal("Route") }).strict(),
    ]),
    // one budget for every replica, kept in this Redis (global-rate-limit.ts); absent: each
    // proxy counts on its own. failureMode: what a request gets when Redis does not answer
    global: z
      .object({
        redisUrl: z.url({ protocol: /^rediss?$/ }),
        failureMode: z.enum(["FailOpen", "FailClosed"]),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RateLimit = z.infer<typeof RateLimit>;

// Who may reach a route (a SecurityPolicy's authorization): the first rule whose CIDRs hold the
// client address (after trusted hops / the PROXY protocol) decides, else defaultAction; 403.
export const Authorization = z
  .object({
    defaultAction: z.enum(["Allow", "Deny"]),
    rules: z.array(
      z
        .object({
          action: z.enum(["Allow", "Deny"]),
          // "10.0.0.0/8", "2001:db8::/32": an address and its prefix length
          cidrs: z
            .array(
              z.string().superRefine((s, ctx) => {
                const c = parseCidr(s);
                if (typeof c === "string" || !s.includes("/"))
                  ctx.addIssue({
                    code: "custom",
                    message: typeof c === "string" ? c : `${s}: no prefix length`,
                  });
              }),
            )
            .min(1),
        })
        .strict(),
    ),
  })
  .strict();
export type Authorization = z.infer<typeof Authorization>;

// A SecurityPolicy's basicAuth: users and password hashes in the `.htpasswd` key of a Secret
// (proxy/filters/htpasswd.ts says which hashes); a request without a valid user gets 401.
export const BasicAuth = z
  .object({
    secretRef: ObjectRef,
    realm: z.string().min(1).max(256),
    // set to the user's name on the request the backend gets
    forwardUsernameHeader: headerName.optional(),
    // the Secret cannot serve (missing, not permitted, lines no hash the proxy checks): why.
    // Requests get 500 — a broken policy closes its routes, never opens them.
    unusable: z.string().optional(),
  })
  .strict();
export type BasicAuth = z.infer<typeof BasicAuth>;

// A SecurityPolicy's apiKeyAuth: every key of the referenced Secrets is a client id, its value
// that client's API key. The key is looked for where extractFrom says, in order; 401 without one.
export const ApiKeyAuth = z
  .object({
    secretRefs: z.array(ObjectRef).min(1),
    extractFrom: z
      .array(
        z
          .object({
            headers: z.array(headerName),
            params: z.array(z.string().min(1)),
            cookies: z.array(z.string().min(1)),
          })
          .strict(),
      )
      .min(1),
    forwardClientIdHeader: headerName.optional(),
    // remove the key from the request before the backend sees it
    sanitize: z.boolean(),
    // as BasicAuth.unusable: a Secret cannot serve, requests get 500
    unusable: z.string().optional(),
  })
  .strict();
export type ApiKeyAuth = z.infer<typeof ApiKeyAuth>;

export const Route = z
  .object({
    // "<namespace>/<name>/rule/<index>": stable, low-cardinality, used as the metrics label.
    id: z.string(),
    source: z
      .object({
        namespace: z.string(),
        name: z.string(),
        rule: z.number().int().min(0),
        ruleName: z.string().optional(),
      })
      .strict(),
    filters: z.array(Filter),
    backends: z.array(WeightedBackend),
    timeouts: z
      .object({ requestMs: millis.optional(), backendRequestMs: millis.optional() })
      .strict(),
    retry: Retry.optional(),
    rateLimit: RateLimit.optional(),
    authorization: Authorization.optional(),
    basicAuth: BasicAuth.optional(),
    apiKeyAuth: ApiKeyAuth.optional(),
    // where a 401 of the route's ExternalAuth filter sends the client instead (302), as
    // ingress-nginx's auth-signin: $scheme, $host, $request_uri, $escaped_request_uri expand
    signIn: z
      .object({ url: z.string().min(1) })
      .strict()
      .optional(),
  })
  .strict();
export type Route = z.infer<typeof Route>;

export const RouteEntry = z.object({ routeId: z.string(), match: RouteMatch }).strict();
export type RouteEntry = z.infer<typeof RouteEntry>;

export const VirtualHost = z
  .object({
    // "example.com", "*.example.com" (suffix match, at least one extra label) or "*" (any host).
    hostname: z.string(),
    // Already in Gateway API precedence order: the first entry that matches wins.
    routes: z.array(RouteEntry),
  })
  .strict();
export type VirtualHost = z.infer<typeof VirtualHost>;

export const TlsCertificate = z
  .object({
    secretRef: ObjectRef,
    // SNI names this certificate serves ("*" = default certificate for the port).
    hostnames: z.array(z.string()).min(1),
  })
  .strict();
export type TlsCertificate = z.infer<typeof TlsCertificate>;

// What a TLS connection is for, by the SNI of its ClientHello, read before any handshake:
// Passthrough splices the bytes (still TLS) to the route's backend, Terminate completes the
// handshake with the socket's certificate for that name and splices the plaintext, HTTP hands
// the connection to the socket's HTTPS listener. routeId null: a listener's name no route
// serves, refused (as a virtual host without routes answers 404).
export const StreamEntry = z
  .object({
    // as VirtualHost.hostname: exact, "*.suffix" or "*"
    hostname: z.string(),
    mode: z.enum(["Passthrough", "Terminate", "HTTP"]),
    routeId: z.string().nullable(),
  })
  .strict();
export type StreamEntry = z.infer<typeof StreamEntry>;

// How a socket treats its clients (a ClientTrafficPolicy); each absent field: the proxy's default.
export const ClientSettings = z
  .object({
    // proxies in front of the gateway, each appending the address it saw to X-Forwarded-For:
    // the client (rate limits, hashing, logs) is the trustedHops-th entry from the right; the
    // peer when there are fewer entries or that one is not an IP address; absent or 0: the peer
    trustedHops: z.number().int().min(0).max(32).optional(),
    requestHeadersTimeoutMs: z.number().int().min(1).optional(),
    // the whole request (head and body) from the client; 0: no limit
    requestTimeoutMs: millis.optional(),
    // a connection with no request in flight; 0: no limit
    idleTimeoutMs: millis.optional(),
    maxHeaderBytes: z.number().int().min(1024).max(1_048_576).optional(),
    maxHeaderCount: z.number().int().min(1).max(10_000).optional(),
    // a declared Content-Length beyond this gets 413; 0: no limit
    maxRequestBodyBytes: z.number().int().min(0).optional(),
    http2: z
      .object({
        maxConcurrentStreams: z.number().int().min(1).max(2_147_483_647).optional(),
        initialStreamWindowBytes: z.number().int().min(65_535).max(2_147_483_647).optional(),
        initialConnectionWindowBytes: z.number().int().min(65_535).max(2_147_483_647).optional(),
      })
      .strict()
      .optional(),
    // the PROXY protocol (v1 or v2) before the connection's bytes: its source is the client;
    // optional: connections without a header are served too (the peer is the client)
    proxyProtocol: z.object({ optional: z.boolean() }).strict().optional(),
  })
  .strict();
export type ClientSettings = z.infer<typeof ClientSettings>;

// OpenTelemetry tracing of a socket's requests (ClientTrafficPolicy tracing, or the proxy's
// --tracing-* flags): a server span per request, exported over OTLP/HTTP in batches.
export const Tracing = z
  .object({
    // the collector's OTLP/HTTP traces URL ("http://collector:4318/v1/traces")
    endpoint: z.url({ protocol: /^https?$/ }),
    // share of new traces recorded (0..1); a request carrying a traceparent follows its sampled
    // flag instead when parentBased
    samplingRatio: z.number().min(0).max(1),
    parentBased: z.boolean(),
    // the resource's service.name
    serviceName: z.string().min(1).max(256),
  })
  .strict();
export type Tracing = z.infer<typeof Tracing>;

export const Listener = z
  .object({
    // "<address>:<port>": one socket per entry.
    name: z.string(),
    address: z.string(),
    port,
    // TLS: only TLS listeners (TLSRoutes) on the socket; HTTPS with streams: both, by SNI
    protocol: z.enum(["HTTP", "HTTPS", "TLS"]),
    tls: z
      .object({
        certificates: z.array(TlsCertificate).min(1),
        // client certificates (Gateway spec.tls.frontend): verified against this PEM bundle;
        // AllowValidOnly refuses the handshake without a valid one, AllowInsecureFallback asks
        // for one and lets the connection through either way
        clientValidation: z
          .object({
            caCertificates: z.string().min(1),
            mode: z.enum(["AllowValidOnly", "AllowInsecureFallback"]),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    // Gateway listeners merged into this socket, for logs and metrics.
    sources: z
      .array(
        z.object({ namespace: z.string(), gateway: z.string(), listener: z.string() }).strict(),
      )
      .min(1),
    // Plugins attached to the whole Gateway (RautaPlugin targetRefs), run before route plugins.
    plugins: z.array(z.string()),
    // How request paths are normalized before matching (router/normalize-path.ts); absent: the
    // secure defaults (merge slashes, unescape %2F/%5C and redirect).
    pathNormalization: z
      .object({
        mergeSlashes: z.boolean(),
        escapedSlashes: z.enum(["KeepUnchanged", "RejectRequest", "UnescapeAndRedirect"]),
      })
      .strict()
      .optional(),
    client: ClientSettings.optional(),
    tracing: Tracing.optional(),
    // Most specific first: exact names, then wildcards by decreasing length, then "*".
    virtualHosts: z.array(VirtualHost),
    // Present when TLS listeners share the socket: the ClientHello's SNI picks an entry (most
    // specific first, as virtualHosts) before any handshake.
    streams: z.array(StreamEntry).optional(),
  })
  .strict();
export type Listener = z.infer<typeof Listener>;

export const Endpoint = z
  .object({
    address: z.string(),
    port,
    ready: z.boolean(),
    serving: z.boolean(),
    terminating: z.boolean(),
    zone: z.string().optional(),
  })
  .strict();
export type Endpoint = z.infer<typeof Endpoint>;

// TLS to the backend (a BackendTLSPolicy targets the Service port). CA certificates are public,
// so they travel in the config; a client certificate is a Secret reference like a listener's.
export const ClusterTls = z
  .object({
    // SNI, and the name the certificate must carry when subjectAltNames is empty
    serverName: z.string().min(1),
    // PEM bundle the backend's chain must lead to; absent: the system trust store
    caCertificates: z.string().min(1).optional(),
    // when present, the certificate must carry one of these (RFC 6125 for Hostname)
    subjectAltNames: z.array(
      z.object({ type: z.enum(["Hostname", "URI"]), value: z.string().min(1) }).strict(),
    ),
    // presented to the backend (Gateway spec.tls.backend.clientCertificateRef)
    clientCertificate: ObjectRef.optional(),
  })
  .strict();
export type ClusterTls = z.infer<typeof ClusterTls>;

// What Maglev hashes to pick an endpoint (absent: the client address). Cookie: the request's
// cookie of that name; a client without one gets one set on the response (session persistence).
export const HashOn = z.discriminatedUnion("type", [
  z.object({ type: z.literal("SourceIP") }).strict(),
  z.object({ type: z.literal("Header"), name: headerName }).strict(),
  z
    .object({
      type: z.literal("Cookie"),
      name: headerName,
      // Max-Age of the cookie the proxy sets; absent: a session cookie
      ttlSeconds: z.number().int().min(1).optional(),
      path: z.string().startsWith("/").optional(),
    })
    .strict(),
]);
export type HashOn = z.infer<typeof HashOn>;

// Per-cluster resilience settings (BackendTrafficPolicy); each absent block: the proxy's defaults.
export const ClusterCircuitBreaker = z
  .object({
    windowMs: z.number().int().min(100),
    minRequests: z.number().int().min(1),
    errorRatio: z.number().gt(0).max(1),
    openMs: z.number().int().min(1),
    halfOpenProbes: z.number().int().min(1),
    errorStatuses: z.boolean(),
  })
  .strict();
export type ClusterCircuitBreaker = z.infer<typeof ClusterCircuitBreaker>;

export const ClusterOutlierDetection = z
  .object({
    // 0 turns passive ejection off
    consecutiveFailures: z.number().int().min(0),
    baseEjectionMs: z.number().int().min(1),
  })
  .strict();
export type ClusterOutlierDetection = z.infer<typeof ClusterOutlierDetection>;

export const ClusterHealthCheck = z
  .object({
    // HTTP: GET path, healthy on expectedStatuses (absent: 200-399); TCP: a connect
    type: z.enum(["HTTP", "TCP"]),
    path: z.string().startsWith("/").optional(),
    hostname: z.string().min(1).optional(),
    expectedStatuses: z.array(z.number().int().min(100).max(599)).min(1).optional(),
    intervalMs: z.number().int().min(100),
    timeoutMs: z.number().int().min(1),
    healthyThreshold: z.number().int().min(1),
    unhealthyThreshold: z.number().int().min(1),
  })
  .strict();
export type ClusterHealthCheck = z.infer<typeof ClusterHealthCheck>;

export const Cluster = z
  .object({
    // "<namespace>/<service>:<port>" ("…:<port>/grpc", "…/tcp" by protocol); a copy with a
    // BackendTrafficPolicy's settings adds "@<policy namespace>/<name>[+…]"
    id: z.string(),
    service: z.object({ namespace: z.string(), name: z.string(), port }).strict(),
    // http1 unless the Service port's appProtocol asks for h2c (kubernetes.io/h2c) or websockets;
    // grpc: a GRPCRoute's backend, HTTP/2 with trailers and streams passed through (h2c, or h2
    // over TLS when tls is set); tcp: a TLSRoute's backend, the client's bytes spliced through.
    protocol: z.enum(["http1", "h2c", "ws", "grpc", "tcp"]),
    // least-request: the fewer requests in flight of two random endpoints (power of two choices)
    lb: z.enum(["round-robin", "least-request", "maglev"]),
    hashOn: HashOn.optional(),
    circuitBreaker: ClusterCircuitBreaker.optional(),
    outlierDetection: ClusterOutlierDetection.optional(),
    healthCheck: ClusterHealthCheck.optional(),
    tls: ClusterTls.optional(),
    endpoints: z.array(Endpoint),
  })
  .strict();
export type Cluster = z.infer<typeof Cluster>;

export const PluginSource = z.union([
  z.object({ builtin: z.string() }).strict(),
  z
    .object({
      configMap: z.object({ namespace: z.string(), name: z.string(), key: z.string() }).strict(),
    })
    .strict(),
  z.object({ inline: z.string() }).strict(),
  // fetched once over http(s), verified against the pinned digest, cached by it
  z
    .object({
      url: z
        .object({
          url: z.string().regex(/^https?:\/\//),
          sha256: z.string().regex(/^sha256:[a-f0-9]{64}$/),
        })
        .strict(),
    })
    .strict(),
]);
export type PluginSource = z.infer<typeof PluginSource>;

export const Plugin = z
  .object({
    // "<namespace>/<name>"
    id: z.string(),
    digest: z.string().optional(),
    source: PluginSource,
    config: z.record(z.string(), z.unknown()),
    needsBody: z.boolean(),
    failurePolicy: z.enum(["FailOpen", "FailClosed"]),
    // Where calls run: Auto (in-thread until the plugin first hits its time limit, then in its own
    // worker thread), Inline (always in-thread), Worker (always in a worker thread).
    isolation: z.enum(["Auto", "Inline", "Worker"]).optional(),
    limits: z
      .object({
        memoryMiB: z.number().int().min(1),
        timeoutMs: z.number().int().min(1),
        maxBodyBytes: z.number().int().min(0),
      })
      .strict(),
  })
  .strict();
export type Plugin = z.infer<typeof Plugin>;

export const CompiledConfig = z
  .object({
    apiVersion: z.literal(CONFIG_API_VERSION),
    // Assigned by whoever publishes the config (controller, standalone reloader); not hashed.
    generation: z.number().int().min(0),
    // sha256 over the canonical JSON of everything except generation and hash.
    hash: z.string().regex(/^sha256:[a-f0-9]{64}$/),
    listeners: z.array(Listener),
    routes: z.array(Route),
    clusters: z.array(Cluster),
    plugins: z.array(Plugin),
  })
  .strict();
export type CompiledConfig = z.infer<typeof CompiledConfig>;
export type CompiledConfigBody = Omit<CompiledConfig, "generation" | "hash">;
