// Which Gateway API channel the cluster's CRDs come from, read from the HTTPRoute CRD's
// `gateway.networking.k8s.io/channel` annotation: GatewayClass supportedFeatures claims the
// experimental-only features (HTTPRoute retry) only where the API server keeps their fields.
import type { GatewayApiChannel } from "../compiler/features.ts";

export const CHANNEL_ANNOTATION = "gateway.networking.k8s.io/channel";
export const HTTPROUTE_CRD = "httproutes.gateway.networking.k8s.io";

export function channelOf(
  crd: { metadata?: { annotations?: Record<string, string> } } | undefined,
): GatewayApiChannel {
  return crd?.metadata?.annotations?.[CHANNEL_ANNOTATION] === "experimental"
    ? "experimental"
    : "standard";
}
