// Gateway API features RAUTA claims in GatewayClass status.supportedFeatures (sorted, as the
// spec asks). Conformance runs exactly these, so a feature goes here only once it works.
export const SUPPORTED_FEATURES = [
  "Gateway",
  "GatewayHTTPListenerIsolation",
  "GatewayPort8080",
  "HTTPRoute",
  "HTTPRouteBackendTimeout",
  "HTTPRouteHostRewrite",
  "HTTPRouteMethodMatching",
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
  "ReferenceGrant",
] as const;
