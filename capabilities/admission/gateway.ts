// Admission for Gateways of our GatewayClasses: deny only what the Gateway API itself makes
// invalid. What RAUTA does not serve (a protocol) and listeners that conflict (one port, two
// protocols; one port and hostname twice) are admitted and reported in the listener's status
// (Accepted False UnsupportedProtocol, Conflicted True ProtocolConflict / HostnameConflict), as
// the spec and the conformance suite want, so a GitOps apply never fails on them.
import type { Gateway } from "../compiler/snapshot.ts";

export function validateGateway(gateway: Gateway): string[] {
  const id = `Gateway ${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`;
  const problems: string[] = [];
  const listeners = gateway.spec.listeners ?? [];
  listeners.forEach((listener, index) => {
    const field = `${id}: spec.listeners[${index}] (${listener.name})`;
    // the CRD's own rule (certificateRefs or options when mode is Terminate), said plainly
    if (
      (listener.protocol === "HTTPS" || listener.protocol === "TLS") &&
      (listener.tls?.mode ?? "Terminate") === "Terminate" &&
      !listener.tls?.certificateRefs?.length &&
      !Object.keys(listener.tls?.options ?? {}).length
    ) {
      problems.push(
        listener.protocol === "HTTPS"
          ? `${field}: HTTPS needs tls.certificateRefs naming a kubernetes.io/tls Secret`
          : `${field}: TLS in mode Terminate (the default) needs tls.certificateRefs naming a kubernetes.io/tls Secret; set tls.mode Passthrough to let the backend terminate`,
      );
    }
  });
  return problems;
}
