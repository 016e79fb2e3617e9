// BackendTLSPolicies → TLS settings of the clusters they target, and the policies' status.
//
// A policy targets Services (optionally one port, by sectionName = port name). For one target
// the oldest policy wins (creationTimestamp, then namespace/name) and later ones are Accepted
// False, Conflicted; a policy naming the port beats one naming the whole Service. A policy whose
// CA certificates cannot be used still claims its targets: their traffic fails (HTTP 500)
// rather than going out unverified or in plaintext.
import type { ClusterTls } from "../../proxy/config/index.ts";
import type { MakeCondition, Problem } from "./conditions.ts";
import { resolveCaCertificateRefs } from "./ca-refs.ts";
import { conditionFactory } from "./conditions.ts";
import { compareStrings } from "./order.ts";
import type { BackendTLSPolicy, CaBundle, ServicePort } from "./snapshot.ts";
import type { BackendTLSPolicyStatus, ParentRefStatus } from "./types.ts";

export type TlsDecision =
  | { policy: string; tls: ClusterTls; refused?: undefined }
  | { policy: string; refused: Problem; tls?: undefined };

interface PolicyModel {
  key: string;
  policy: BackendTLSPolicy;
  /** why the policy cannot be used (Accepted False), with the ResolvedRefs problem if any */
  notAccepted?: Problem;
  unresolved?: Problem;
  tls?: Omit<ClusterTls, "clientCertificate">;
  /** targets this policy lost to an older one */
  conflicts: number;
  targets: number;
}

const SYSTEM_CAS = "System";

function policyKey(p: BackendTLSPolicy): string {
  return `${p.metadata.namespace ?? "default"}/${p.metadata.name}`;
}

function olderFirst(a: BackendTLSPolicy, b: BackendTLSPolicy): number {
  return (
    compareStrings(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") ||
    compareStrings(policyKey(a), policyKey(b))
  );
}

function validate(policy: BackendTLSPolicy, bundles: ReadonlyMap<string, CaBundle>): PolicyModel {
  const key = policyKey(policy);
  const model: PolicyModel = { key, policy, conflicts: 0, targets: 0 };
  const validation = policy.spec.validation;
  const { certificates, unresolved } = resolveCaCertificateRefs(
    validation.caCertificateRefs ?? [],
    {
      namespace: policy.metadata.namespace ?? "default",
      field: "spec.validation.caCertificateRefs",
      bundles,
      kindReason: "InvalidKind",
    },
  );
  if (unresolved) model.unresolved = unresolved;
  const wellKnown = validation.wellKnownCACertificates;
  if (wellKnown !== undefined && wellKnown !== SYSTEM_CAS) {
    model.notAccepted = {
      reason: "Invalid",
      message: `spec.validation.wellKnownCACertificates: ${wellKnown} is not supported; use System`,
    };
    return model;
  }
  if (wellKnown === undefined && certificates === undefined) {
    model.notAccepted = {
      reason: "NoValidCACertificate",
      message: model.unresolved?.message ?? "spec.validation names no CA certificate",
    };
    return model;
  }
  model.tls = {
    serverName: validation.hostname,
    ...(wellKnown === SYSTEM_CAS ? {} : { caCertificates: certificates }),
    subjectAltNames: (validation.subjectAltNames ?? []).flatMap(
      (san): ClusterTls["subjectAltNames"] =>
        san.type === "Hostname" && san.hostname
          ? [{ type: "Hostname", value: san.hostname }]
          : san.type === "URI" && san.uri
            ? [{ type: "URI", value: san.uri }]
            : [],
    ),
  };
  return model;
}

export class BackendTlsPolicies {
  private readonly models: PolicyModel[] = [];
  // "<namespace>/<service>" or "<namespace>/<service>#<port name>" → the winning policy
  private readonly byTarget = new Map<string, PolicyModel>();
  // the same keys → every policy naming the target, winners and losers (for their status)
  private readonly claims = new Map<string, string[]>();

  constructor(policies: readonly BackendTLSPolicy[], bundles: ReadonlyMap<string, CaBundle>) {
    for (const policy of [...policies].sort(olderFirst)) {
      const model = validate(policy, bundles);
      this.models.push(model);
      const namespace = policy.metadata.namespace ?? "default";
      const seen = new Set<string>();
      for (const ref of policy.spec.targetRefs) {
        if ((ref.group ?? "") !== "" || ref.kind !== "Service") continue;
        const target = `${namespace}/${ref.name}${ref.sectionName ? `#${ref.sectionName}` : ""}`;
        if (seen.has(target)) continue;
        seen.add(target);
        model.targets++;
        this.claims.set(target, [...(this.claims.get(target) ?? []), model.key]);
        if (this.byTarget.has(target)) model.conflicts++;
        else this.byTarget.set(target, model);
      }
    }
  }

  /** Every policy that names a Service port (directly or as the whole Service). */
  claimsOn(namespace: string, service: string, port: ServicePort): string[] {
    return [
      ...(port.name ? (this.claims.get(`${namespace}/${service}#${port.name}`) ?? []) : []),
      ...(this.claims.get(`${namespace}/${service}`) ?? []),
    ];
  }

  /** The TLS a Service port's traffic must use, or undefined (plaintext). */
  forPort(namespace: string, service: string, port: ServicePort): TlsDecision | undefined {
    const model =
      (port.name ? this.byTarget.get(`${namespace}/${service}#${port.name}`) : undefined) ??
      this.byTarget.get(`${namespace}/${service}`);
    if (!model) return undefined;
    if (model.tls) return { policy: model.key, tls: model.tls };
    return {
      policy: model.key,
      refused: {
        reason: model.notAccepted!.reason,
        message: `BackendTLSPolicy ${model.key} is not accepted: ${model.notAccepted!.message}`,
      },
    };
  }

  /**
   * Status of every policy one of our Gateways uses: one ancestor entry per such Gateway.
   * `ancestors` maps a policy key to those Gateways ("<namespace>/<name>"); policies no Gateway
   * of ours uses get no status from us.
   */
  statuses(
    ancestors: ReadonlyMap<string, ReadonlySet<string>>,
    controllerName: string,
    now: string,
  ): BackendTLSPolicyStatus[] {
    const out: BackendTLSPolicyStatus[] = [];
    for (const model of this.models) {
      const gateways = [...(ancestors.get(model.key) ?? [])].sort(compareStrings);
      if (gateways.length === 0) continue;
      const condition = conditionFactory(model.policy.metadata.generation, now);
      const conditions = policyConditions(model, condition);
      out.push({
        kind: "BackendTLSPolicy",
        namespace: model.policy.metadata.namespace ?? "default",
        name: model.policy.metadata.name,
        status: {
          ancestors: gateways.map(gateway => {
            const [namespace, name] = gateway.split("/") as [string, string];
            const ancestorRef: ParentRefStatus = {
              group: "gateway.networking.k8s.io",
              kind: "Gateway",
              namespace,
              name,
            };
            return { ancestorRef, controllerName, conditions };
          }),
        },
      });
    }
    return out;
  }
}

function policyConditions(model: PolicyModel, condition: MakeCondition) {
  const conflicted = model.targets > 0 && model.conflicts === model.targets;
  const accepted = conflicted
    ? condition(
        "Accepted",
        false,
        "Conflicted",
        "an older BackendTLSPolicy targets the same Service (and port)",
      )
    : model.notAccepted
      ? condition("Accepted", false, model.notAccepted.reason, model.notAccepted.message)
      : condition(
          "Accepted",
          true,
          "Accepted",
          `TLS to the backend, verified for ${model.tls!.serverName}`,
        );
  const resolved = model.unresolved
    ? condition("ResolvedRefs", false, model.unresolved.reason, model.unresolved.message)
    : condition("ResolvedRefs", true, "ResolvedRefs", "all CA certificate references resolved");
  return [accepted, resolved];
}
