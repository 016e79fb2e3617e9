// Reads Kubernetes YAML (files or directories) into a compiler Snapshot for standalone mode.
// Every Gateway API object and RautaPlugin is validated against the JSON Schema generated from
// its pinned CRD, so a typo is reported as file, document, object and field — the same checks
// the API server would make — and never reaches the compiler.
import { caBundle } from "../../capabilities/controller/ca-bundle.ts";
import { secretMeta } from "../../capabilities/controller/secret-meta.ts";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { z } from "zod";
import { parseAllDocuments } from "yaml";
import type { Snapshot } from "../../capabilities/compiler/index.ts";
import { emptySnapshot } from "../../capabilities/compiler/index.ts";
import { decodeSecretData, keyPairOf } from "../tls/secrets.ts";
import type { SecretData } from "../tls/secrets.ts";

export interface ManifestError {
  file: string;
  document: number;
  object?: string;
  field?: string;
  message: string;
}

export interface LoadResult {
  snapshot: Snapshot;
  tlsSecrets: Map<string, { cert: string; key: string }>;
  /** every Secret's keys, decoded (basic-auth users and API keys are looked up here) */
  secretData: Map<string, SecretData>;
  errors: ManifestError[];
  // Documents of kinds RAUTA does not read (Deployments, …), skipped on purpose.
  skipped: Array<{ file: string; document: number; object: string }>;
  /** ConfigMaps by "<namespace>/<name>": key → bytes (binaryData base64-decoded, data as UTF-8) */
  configMaps: Map<string, Map<string, Uint8Array>>;
}

const generatedDir = new URL("../../generated/", import.meta.url);

type Schema = z.ZodType;
const schemaCache = new Map<string, Schema>();

// zod's fromJSONSchema ignores `not`, so a `oneOf` whose branches are told apart by `not` (as in
// Gateway spec.addresses) would always match twice and reject every value. `anyOf` keeps every
// check zod can make; the exclusivity is the API server's to enforce.
export function relaxOneOf(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(relaxOneOf);
  if (schema === null || typeof schema !== "object") return schema;
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema))
    result[key === "oneOf" ? "anyOf" : key] = relaxOneOf(value);
  return result;
}

export function crdValidator(schemaJson: unknown): Schema {
  return z.fromJSONSchema(relaxOneOf(schemaJson) as Parameters<typeof z.fromJSONSchema>[0]);
}

function crdSchema(relative: string): Schema {
  let schema = schemaCache.get(relative);
  if (!schema) {
    schema = crdValidator(JSON.parse(readFileSync(new URL(relative, generatedDir), "utf8")));
    schemaCache.set(relative, schema);
  }
  return schema;
}

interface KindHandler {
  schema?: string;
  add(snapshot: Snapshot, object: Record<string, unknown>): void;
}

const push =
  <K extends keyof Snapshot>(key: K) =>
  (snapshot: Snapshot, object: Record<string, unknown>) => {
    (snapshot[key] as unknown[]).push(object);
  };

const GATEWAY_VERSIONS = ["v1", "v1beta1"];
const HANDLERS = new Map<string, KindHandler>();
for (const version of GATEWAY_VERSIONS) {
  HANDLERS.set(`gateway.networking.k8s.io/${version}/GatewayClass`, {
    schema: `gateway-api/experimental/gatewayclass-${version}.schema.json`,
    add: push("gatewayClasses"),
  });
  HANDLERS.set(`gateway.networking.k8s.io/${version}/Gateway`, {
    schema: `gateway-api/experimental/gateway-${version}.schema.json`,
    add: push("gateways"),
  });
  HANDLERS.set(`gateway.networking.k8s.io/${version}/HTTPRoute`, {
    schema: `gateway-api/experimental/httproute-${version}.schema.json`,
    add: push("httpRoutes"),
  });
  HANDLERS.set(`gateway.networking.k8s.io/${version}/ReferenceGrant`, {
    schema: `gateway-api/experimental/referencegrant-${version}.schema.json`,
    add: push("referenceGrants"),
  });
}
HANDLERS.set("gateway.networking.k8s.io/v1/GRPCRoute", {
  schema: "gateway-api/experimental/grpcroute-v1.schema.json",
  add: push("grpcRoutes"),
});
HANDLERS.set("gateway.networking.k8s.io/v1/TLSRoute", {
  schema: "gateway-api/experimental/tlsroute-v1.schema.json",
  add: push("tlsRoutes"),
});
HANDLERS.set("gateway.networking.k8s.io/v1/BackendTLSPolicy", {
  schema: "gateway-api/experimental/backendtlspolicy-v1.schema.json",
  add: push("backendTLSPolicies"),
});
HANDLERS.set("gateway.networking.k8s.io/v1/ListenerSet", {
  schema: "gateway-api/experimental/listenerset-v1.schema.json",
  add: push("listenerSets"),
});
HANDLERS.set("rauta.io/v1alpha1/RautaPlugin", {
  schema: "rauta/rautaplugin-v1alpha1.schema.json",
  add: push("rautaPlugins"),
});
HANDLERS.set("rauta.io/v1alpha1/BackendTrafficPolicy", {
  schema: "rauta/backendtrafficpolicy-v1alpha1.schema.json",
  add: push("backendTrafficPolicies"),
});
HANDLERS.set("rauta.io/v1alpha1/ClientTrafficPolicy", {
  schema: "rauta/clienttrafficpolicy-v1alpha1.schema.json",
  add: push("clientTrafficPolicies"),
});
HANDLERS.set("rauta.io/v1alpha1/SecurityPolicy", {
  schema: "rauta/securitypolicy-v1alpha1.schema.json",
  add: push("securityPolicies"),
});
HANDLERS.set("v1/Service", { add: push("services") });
HANDLERS.set("discovery.k8s.io/v1/EndpointSlice", { add: push("endpointSlices") });
HANDLERS.set("v1/Namespace", { add: push("namespaces") });
HANDLERS.set("v1/Secret", {
  add: (snapshot, object) => snapshot.secrets.push(secretMeta(object)),
});

const CLUSTER_SCOPED = new Set(["GatewayClass", "Namespace"]);

function listFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap(name => {
      const child = join(path, name);
      if (statSync(child).isDirectory()) return listFiles(child);
      return [".yaml", ".yml"].includes(extname(name)) ? [child] : [];
    });
}

function fieldPath(path: PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) =>
      typeof part === "number" ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part),
    "",
  );
}

export function loadManifests(paths: readonly string[]): LoadResult {
  const result: LoadResult = {
    snapshot: emptySnapshot(),
    tlsSecrets: new Map(),
    secretData: new Map(),
    errors: [],
    skipped: [],
    configMaps: new Map(),
  };
  for (const file of paths.flatMap(p => listFiles(p))) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      result.errors.push({
        file,
        document: 0,
        message: `cannot read: ${(error as Error).message}`,
      });
      continue;
    }
    parseAllDocuments(text).forEach((doc, index) => {
      const document = index + 1;
      if (doc.errors.length > 0) {
        for (const error of doc.errors)
          result.errors.push({ file, document, message: `YAML: ${error.message.split("\n")[0]}` });
        return;
      }
      const object = doc.toJS() as unknown;
      if (object === null || object === undefined) return;
      if (typeof object !== "object" || Array.isArray(object)) {
        result.errors.push({
          file,
          document,
          message: "expected a Kubernetes object (a mapping with apiVersion, kind and metadata)",
        });
        return;
      }
      const record = object as Record<string, unknown>;
      const { apiVersion, kind } = record;
      const metadata = record.metadata as Record<string, unknown> | undefined;
      if (
        typeof apiVersion !== "string" ||
        typeof kind !== "string" ||
        typeof metadata?.name !== "string"
      ) {
        result.errors.push({
          file,
          document,
          message: "apiVersion, kind and metadata.name are required",
        });
        return;
      }
      const name = `${kind} ${metadata.namespace ?? (CLUSTER_SCOPED.has(kind) ? "" : "default")}${CLUSTER_SCOPED.has(kind) ? "" : "/"}${metadata.name}`;
      // ConfigMaps matter as plugin module sources (serve-command resolves them) and CA bundles
      if (apiVersion === "v1" && kind === "ConfigMap") {
        metadata.namespace ??= "default";
        const bundle = caBundle(record);
        if (bundle) (result.snapshot.caBundles ??= []).push(bundle);
        const keys = new Map<string, Uint8Array>();
        for (const [k, v] of Object.entries((record.data as Record<string, string>) ?? {}))
          keys.set(k, new Uint8Array(Buffer.from(String(v), "utf8")));
        for (const [k, v] of Object.entries((record.binaryData as Record<string, string>) ?? {}))
          keys.set(k, new Uint8Array(Buffer.from(String(v), "base64")));
        result.configMaps.set(`${metadata.namespace ?? "default"}/${metadata.name}`, keys);
        return;
      }
      const handler = HANDLERS.get(`${apiVersion}/${kind}`);
      if (!handler) {
        result.skipped.push({ file, document, object: name });
        return;
      }
      if (!CLUSTER_SCOPED.has(kind) && metadata.namespace === undefined)
        metadata.namespace = "default";
      if (handler.schema) {
        const checked = crdSchema(handler.schema).safeParse(record);
        if (!checked.success) {
          for (const issue of checked.error.issues) {
            result.errors.push({
              file,
              document,
              object: name,
              field: fieldPath(issue.path),
              message: issue.message,
            });
          }
          return;
        }
      }
      handler.add(result.snapshot, record);
      if (kind === "Secret") {
        const key = `${metadata.namespace}/${metadata.name}`;
        const decoded = decodeSecretData(
          record.data as Record<string, string> | undefined,
          record.stringData as Record<string, string> | undefined,
        );
        const tls = keyPairOf(decoded);
        if (tls) result.tlsSecrets.set(key, tls);
        result.secretData.set(key, decoded);
      }
    });
  }
  return result;
}

export function formatManifestError(error: ManifestError): string {
  const where = [`${error.file}`, `document ${error.document}`, error.object, error.field]
    .filter(Boolean)
    .join(": ");
  return `${where}: ${error.message}`;
}
