// Gateway API features RAUTA claims in GatewayClass status.supportedFeatures (sorted, as the
// spec asks). Conformance runs exactly these, so a feature goes here only once it works.
export const SUPPORTED_FEATURES = [
  "BackendTLSPolicy",
  "BackendTLSPolicySANValidation",
  "Gateway",
  "GatewayAddressEmpty",
  "GatewayBackendClientCertificate",
  "GatewayFrontendClientCertificateValidation",
  "GatewayFrontendClientCertificateValidationInsecureFallback",
  "GatewayHTTPListenerIsolation",
  "GatewayHTTPSListenerDetectMisdirectedRequests",
  "GatewayInfrastructure",
  "GatewayPort8080",
  "GatewayStaticAddresses",
  "GRPCRoute",
  "GRPCRouteNamedRouteRule",
  "HTTPRoute",
  "HTTPRoute303RedirectStatusCode",
  "HTTPRoute307RedirectStatusCode",
  "HTTPRoute308RedirectStatusCode",
  "HTTPRouteBackendProtocolH2C",
  "HTTPRouteBackendProtocolWebSocket",
  "HTTPRouteBackendRequestHeaderModification",
  "HTTPRouteBackendTimeout",
  "HTTPRouteCORS",
  "HTTPRouteDestinationPortMatching",
  "HTTPRouteHostRewrite",
  "HTTPRouteMethodMatching",
  "HTTPRouteNamedRouteRule",
  "HTTPRouteParentRefPort",
  "HTTPRoutePathRedirect",
  "HTTPRoutePathRewrite",
  "HTTPRoutePortRedirect",
  "HTTPRouteQueryParamMatching",
  "HTTPRouteRequestMirror",
  "HTTPRouteRequestMultipleMirrors",
  "HTTPRouteRequestPercentageMirror",
  "HTTPRouteRequestTimeout",
  "HTTPRouteResponseHeaderModification",
  "HTTPRouteSchemeRedirect",
  "ListenerSet",
  "ReferenceGrant",
  "TLSRoute",
  "TLSRouteModeMixed",
  "TLSRouteModeTerminate",
] as const;

// Features whose fields only the experimental-channel CRDs carry (on standard-channel CRDs the
// API server prunes HTTPRoute rules' `retry`): claimed only where those CRDs are installed.
export const EXPERIMENTAL_CHANNEL_FEATURES = [
  "HTTPRouteRetry",
  "HTTPRouteRetryBackendTimeout",
  "HTTPRouteRetryConnectionError",
] as const;

export type GatewayApiChannel = "standard" | "experimental";

/** What GatewayClass status.supportedFeatures lists on a cluster with `channel` CRDs, sorted. */
export function supportedFeatures(channel: GatewayApiChannel = "standard"): string[] {
  const features: string[] = [...SUPPORTED_FEATURES];
  if (channel === "experimental") features.push(...EXPERIMENTAL_CHANNEL_FEATURES);
  return features.sort();
}
