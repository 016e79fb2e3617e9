// ClientTrafficPolicies: how a Gateway's listeners treat their clients. A policy naming a
// listener (sectionName) wins over the Gateway's, section by section. The settings are a
// socket's (one port of one address), so listeners sharing a socket must agree: when they do not,
// the socket takes its first listener's and the other policies are told why they do not apply.
import type { ClientSettings, Listener, Tracing } from "../../proxy/config/index.ts";
import type { MakeCondition, Problem } from "./conditions.ts";
import { parseDuration } from "./durations.ts";
import type { ListenerModel } from "./gateways.ts";
import { PolicyAttachment, policyKeyOf, repeatedTargets, targetKey } from "./policy-attachment.ts";
import type { AttachedModel } from "./policy-attachment.ts";
import type { ClientTrafficPolicy, Gateway } from "./snapshot.ts";
import type { ClientTrafficPolicyStatus, Condition } from "./types.ts";

type Spec = ClientTrafficPolicy["spec"];
type PathNormalization = NonNullable<Listener["pathNormalization"]>;

/** What one policy sets, by section (a section is taken whole from one policy). */
export interface ClientPolicySettings {
  clientIPDetection?: Pick<ClientSettings, "trustedHops">;
  proxyProtocol?: NonNullable<ClientSettings["proxyProtocol"]>;
  timeout?: Pick<ClientSettings, "requestHeadersTimeoutMs" | "requestTimeoutMs" | "idleTimeoutMs">;
  limits?: Pick<ClientSettings, "maxHeaderBytes" | "maxHeaderCount" | "maxRequestBodyBytes">;
  http2?: NonNullable<ClientSettings["http2"]>;
  path?: PathNormalization;
  tracing?: Tracing;
}
type Section = keyof ClientPolicySettings;
const SECTIONS: readonly Section[] = [
  "clientIPDetection",
  "proxyProtocol",
  "timeout",
  "limits",
  "http2",
  "path",
  "tracing",
];

/** The compiled sections, or every problem of the spec. */
export function compileClientSpec(spec: Spec): ClientPolicySettings | Problem[] {
  const problems: string[] = [];
  const out: ClientPolicySettings = {};
  const duration = (field: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    const ms = parseDuration(value);
    if (ms === undefined) problems.push(`${field}: ${JSON.stringify(value)} is not a duration`);
    return ms;
  };
  problems.push(...repeatedTargets(spec.targetRefs));
  const xff = spec.clientIPDetection?.xForwardedFor;
  if (spec.clientIPDetection) out.clientIPDetection = { trustedHops: xff?.numTrustedHops ?? 0 };
  if (spec.proxyProtocol) out.proxyProtocol = { optional: spec.proxyProtocol.optional ?? false };
  const t = spec.timeout;
  if (t) {
    const headers = duration("spec.timeout.requestHeaders", t.requestHeaders);
    const request = duration("spec.timeout.request", t.request);
    const idle = duration("spec.timeout.idle", t.idle);
    if (headers === 0)
      problems.push(
        "spec.timeout.requestHeaders: 0s would leave slow clients holding connections for ever; give a duration",
      );
    if (headers !== undefined && request !== undefined && request > 0 && headers > request)
      problems.push(
        `spec.timeout.requestHeaders (${t.requestHeaders}) is longer than spec.timeout.request (${t.request}), which includes the head`,
      );
    out.timeout = {
      ...(headers ? { requestHeadersTimeoutMs: headers } : {}),
      ...(request !== undefined ? { requestTimeoutMs: request } : {}),
      ...(idle !== undefined ? { idleTimeoutMs: idle } : {}),
    };
  }
  const l = spec.limits;
  if (l)
    out.limits = {
      ...(l.maxHeaderSize !== undefined ? { maxHeaderBytes: l.maxHeaderSize } : {}),
      ...(l.maxHeaderCount !== undefined ? { maxHeaderCount: l.maxHeaderCount } : {}),
      ...(l.maxRequestBodySize !== undefined ? { maxRequestBodyBytes: l.maxRequestBodySize } : {}),
    };
  const h2 = spec.http2;
  if (h2)
    out.http2 = {
      ...(h2.maxConcurrentStreams !== undefined
        ? { maxConcurrentStreams: h2.maxConcurrentStreams }
        : {}),
      ...(h2.initialStreamWindowSize !== undefined
        ? { initialStreamWindowBytes: h2.initialStreamWindowSize }
        : {}),
      ...(h2.initialConnectionWindowSize !== undefined
        ? { initialConnectionWindowBytes: h2.initialConnectionWindowSize }
        : {}),
    };
  if (spec.path)
    out.path = {
      mergeSlashes: spec.path.mergeSlashes ?? true,
      escapedSlashes: spec.path.escapedSlashes ?? "UnescapeAndRedirect",
    };
  if (spec.tracing) {
    const tracing = compileTracing(spec.tracing, problems);
    if (tracing) out.tracing = tracing;
  }
  if (SECTIONS.every(s => out[s] === undefined) && problems.length === 0)
    problems.push(`spec sets nothing: give at least one of ${SECTIONS.join(", ")}`);
  return problems.length > 0 ? problems.map(message => ({ reason: "Invalid", message })) : out;
}

// The share of new traces as a ratio; OTLP wants a URL it can POST to.
function compileTracing(t: NonNullable<Spec["tracing"]>, problems: string[]): Tracing | null {
  const before = problems.length;
  let url: URL | null = null;
  try {
    url = new URL(t.endpoint);
  } catch {
    problems.push(`spec.tracing.endpoint: ${JSON.stringify(t.endpoint)} is not a URL`);
  }
  if (url && url.protocol !== "http:" && url.protocol !== "https:")
    problems.push(
      `spec.tracing.endpoint: ${JSON.stringify(t.endpoint)} must be an http:// or https:// URL (OTLP/HTTP)`,
    );
  if (url && (url.username || url.password))
    problems.push(
      "spec.tracing.endpoint: credentials in the URL would be written into the proxy's config; the collector must accept the proxy without them",
    );
  let ratio = 1;
  if (t.samplingRate !== undefined && t.samplingFraction !== undefined)
    problems.push("spec.tracing: give samplingRate or samplingFraction, not both");
  else if (t.samplingRate !== undefined) {
    if (t.samplingRate < 0 || t.samplingRate > 100)
      problems.push(`spec.tracing.samplingRate: ${t.samplingRate} is not a percentage (0..100)`);
    ratio = t.samplingRate / 100;
  } else if (t.samplingFraction !== undefined) {
    const { numerator, denominator = 100 } = t.samplingFraction;
    if (numerator < 0 || denominator < 1 || numerator > denominator)
      problems.push(
        `spec.tracing.samplingFraction: ${numerator}/${denominator} is not a share between 0 and 1`,
      );
    ratio = numerator / denominator;
  }
  if (problems.length > before) return null;
  return {
    endpoint: url!.toString(),
    samplingRatio: ratio,
    parentBased: t.parentBased ?? true,
    serviceName: t.serviceName ?? "rauta",
  };
}

type Model = AttachedModel<ClientTrafficPolicy, ClientPolicySettings>;

export class ClientPolicies {
  private readonly attachment: PolicyAttachment<ClientTrafficPolicy, ClientPolicySettings>;

  constructor(policies: readonly ClientTrafficPolicy[], gateways: readonly Gateway[]) {
    const listeners = new Map(
      gateways.map(g => [policyKeyOf(g.metadata), new Set(g.spec.listeners.map(l => l.name))]),
    );
    this.attachment = new PolicyAttachment(
      "ClientTrafficPolicy",
      policies,
      p => compileClientSpec(p.spec),
      (_kind, namespace, name, section) => {
        const names = listeners.get(`${namespace}/${name}`);
        if (!names) return `Gateway ${namespace}/${name} does not exist`;
        if (section !== undefined && !names.has(section))
          return `Gateway ${namespace}/${name} has no listener named ${section}`;
        return undefined;
      },
    );
  }

  /** The settings of one listener, section by section, and the policies they came from. */
  private forListener(l: ListenerModel): { settings: ClientPolicySettings; policies: Model[] } {
    const ns = l.gateway.metadata.namespace ?? "default";
    const name = l.gateway.metadata.name;
    const layers = [
      l.owner.kind === "Gateway"
        ? this.attachment.holder(targetKey("Gateway", ns, name, l.name))
        : undefined,
      this.attachment.holder(targetKey("Gateway", ns, name)),
    ].filter((m): m is Model => m !== undefined);
    const settings: ClientPolicySettings = {};
    const policies = new Set<Model>();
    for (const section of SECTIONS) {
      const m = layers.find(x => x.settings![section] !== undefined);
      if (!m) continue;
      (settings as Record<string, unknown>)[section] = m.settings![section];
      policies.add(m);
    }
    return { settings, policies: [...policies] };
  }

  /**
   * The settings of a socket, from its listeners' policies (the first listener decides when
   * they disagree): the config Listener's `client` and `pathNormalization`.
   */
  forSocket(
    members: readonly ListenerModel[],
    port: number,
  ): Pick<Listener, "client" | "pathNormalization" | "tracing"> {
    const all = members.map(l => ({ listener: l, ...this.forListener(l) }));
    const first = all[0];
    if (!first) return {};
    const decided = JSON.stringify(first.settings);
    for (const m of all) {
      const gatewayKey = `${m.listener.gateway.metadata.namespace ?? "default"}/${m.listener.gateway.metadata.name}`;
      if (JSON.stringify(m.settings) === decided) {
        for (const p of m.policies) this.attachment.usedIn(p.key, gatewayKey);
        continue;
      }
      for (const p of m.policies)
        if (!first.policies.includes(p))
          this.attachment.conflict(
            p.key,
            {
              group: "gateway.networking.k8s.io",
              kind: "Gateway",
              namespace: m.listener.gateway.metadata.namespace ?? "default",
              name: m.listener.gateway.metadata.name,
              sectionName: m.listener.name,
            },
            `listener ${m.listener.name} shares port ${port} with listener ${first.listener.name} of Gateway ${first.listener.gatewayKey}, whose client settings differ; a port has one set of settings and takes ${first.listener.name}'s: give every listener on the port the same policy (or target the Gateway)`,
          );
    }
    const { path, clientIPDetection, proxyProtocol, timeout, limits, http2, tracing } =
      first.settings;
    const client: ClientSettings = {
      ...clientIPDetection,
      ...(proxyProtocol ? { proxyProtocol } : {}),
      ...timeout,
      ...limits,
      ...(http2 ? { http2 } : {}),
    };
    return {
      ...(Object.keys(client).length > 0 ? { client } : {}),
      ...(path ? { pathNormalization: path } : {}),
      ...(tracing ? { tracing } : {}),
    };
  }

  statuses(controllerName: string, now: string): ClientTrafficPolicyStatus[] {
    return this.attachment.statuses(controllerName, now, accepted) as ClientTrafficPolicyStatus[];
  }
}

function accepted(model: Model, condition: MakeCondition): Condition {
  const sections = SECTIONS.filter(s => model.settings![s] !== undefined).join(", ");
  return condition("Accepted", true, "Accepted", `policy applies: ${sections}`);
}
