// Admission for Gateways of our GatewayClasses: reject listener sets that can never be served
// (one port with two protocols, two listeners with the same port and hostname, protocols RAUTA
// does not serve, HTTPS without a certificate).
import { SUPPORTED_ROUTE_KINDS } from "../compiler/gateways.ts";
import type { Gateway } from "../compiler/snapshot.ts";

export function validateGateway(gateway: Gateway): string[] {
  const id = `Gateway ${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`;
  const problems: string[] = [];
  const listeners = gateway.spec.listeners ?? [];
  listeners.forEach((listener, index) => {
    const field = `${id}: spec.listeners[${index}] (${listener.name})`;
    if (!SUPPORTED_ROUTE_KINDS[listener.protocol]) {
      problems.push(
        `${field}: protocol ${listener.protocol} is not served by RAUTA; use HTTP or HTTPS`,
      );
    }
    if (
      listener.protocol === "HTTPS" &&
      (listener.tls?.mode ?? "Terminate") === "Terminate" &&
      !listener.tls?.certificateRefs?.length
    ) {
      problems.push(`${field}: HTTPS needs tls.certificateRefs naming a kubernetes.io/tls Secret`);
    }
    for (const other of listeners.slice(0, index)) {
      if (other.port !== listener.port) continue;
      if (other.protocol !== listener.protocol) {
        problems.push(
          `${field}: port ${listener.port} is already used by listener ${other.name} with protocol ${other.protocol}; one port carries one protocol`,
        );
      } else if ((other.hostname ?? "") === (listener.hostname ?? "")) {
        problems.push(
          `${field}: listener ${other.name} already serves port ${listener.port} with hostname ${listener.hostname ?? "(none)"}; give each listener a distinct hostname or port`,
        );
      }
    }
  });
  return problems;
}
