// The data plane's public surface.
export { Proxy, DEFAULT_HANDLER_OPTIONS } from "./runtime/proxy.ts";
export type { ProxyOptions, ApplyResult } from "./runtime/proxy.ts";
export { validateConfig, loadConfigFile, ConfigError } from "./config/load.ts";
export { StaticSecretProvider, keyPairFromSecretData } from "./tls/secrets.ts";
export type { SecretProvider, TlsKeyPair } from "./tls/secrets.ts";
export { startAdminServer } from "./observability/admin.ts";
export { Metrics } from "./observability/metrics.ts";
export { createLogger, silentLogger } from "./observability/logger.ts";
