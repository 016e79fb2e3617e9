export * from "./schema.ts";
export { canonicalJson, hashConfigBody, sealConfig, bodyOf } from "./hash.ts";
export * from "./configmap.ts";
export * from "./heartbeat.ts";
export * from "./certificates.ts";
