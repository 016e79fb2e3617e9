// How a proxy tells the control plane which config generation it serves: a coordination Lease
// per proxy instance, labelled PROXY_LEASE_LABEL, renewed while the proxy lives, annotated with
// LOADED_GENERATION_ANNOTATION. A Lease not renewed within its duration is a proxy that is gone.
export const PROXY_LEASE_LABEL = "rauta.io/proxy";
export const LOADED_GENERATION_ANNOTATION = "rauta.io/loaded-generation";
