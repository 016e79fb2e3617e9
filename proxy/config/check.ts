// Checks of a CompiledConfig beyond its schema. Kept apart from the zod schema (load.ts) so a
// serving worker, whose primary already validated the config, checks it without loading zod.
import type { CompiledConfig, Filter } from "./schema.ts";
import { hashConfigBody, bodyOf } from "./hash.ts";

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `invalid config: ${problems.slice(0, 10).join("; ")}${problems.length > 10 ? ` (and ${problems.length - 10} more)` : ""}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export interface ValidateOptions {
  /** Check that `hash` matches the body (default true). */
  verifyHash?: boolean;
}

/**
 * The checks a schema cannot express (hash, unique ids, references between routes, clusters,
 * plugins and listeners) on a config already shaped as CompiledConfig; throws ConfigError.
 */
export function checkConfig(config: CompiledConfig, options: ValidateOptions = {}): CompiledConfig {
  const problems: string[] = [];
  if (options.verifyHash !== false) {
    const want = hashConfigBody(bodyOf(config));
    if (want !== config.hash)
      problems.push(`hash: ${config.hash} does not match the body (${want})`);
  }
  const clusterIds = new Set<string>();
  for (const [i, c] of config.clusters.entries()) {
    if (clusterIds.has(c.id)) problems.push(`clusters[${i}]: duplicate id ${c.id}`);
    clusterIds.add(c.id);
    if (c.hashOn !== undefined && c.lb !== "maglev")
      problems.push(`clusters[${i}]: hashOn needs lb maglev (lb is ${c.lb})`);
    if (c.healthCheck && c.healthCheck.timeoutMs > c.healthCheck.intervalMs)
      problems.push(`clusters[${i}]: healthCheck timeoutMs is longer than its intervalMs`);
  }
  const pluginIds = new Set(config.plugins.map(p => p.id));
  const routeIds = new Set<string>();
  const checkFilters = (where: string, filters: Filter[]) => {
    for (const [j, f] of filters.entries()) {
      if (f.type === "RequestMirror" && !clusterIds.has(f.clusterId)) {
        problems.push(`${where}.filters[${j}]: mirror cluster ${f.clusterId} does not exist`);
      }
      if (f.type === "ExternalAuth" && !clusterIds.has(f.clusterId)) {
        problems.push(`${where}.filters[${j}]: auth cluster ${f.clusterId} does not exist`);
      }
      if (f.type === "Plugin" && !pluginIds.has(f.pluginId)) {
        problems.push(`${where}.filters[${j}]: plugin ${f.pluginId} does not exist`);
      }
    }
  };
  for (const [i, r] of config.routes.entries()) {
    if (routeIds.has(r.id)) problems.push(`routes[${i}]: duplicate id ${r.id}`);
    routeIds.add(r.id);
    checkFilters(`routes[${i}]`, r.filters);
    for (const [j, b] of r.backends.entries()) {
      if (b.clusterId !== null && !clusterIds.has(b.clusterId)) {
        problems.push(`routes[${i}].backends[${j}]: cluster ${b.clusterId} does not exist`);
      }
      checkFilters(`routes[${i}].backends[${j}]`, b.filters);
    }
  }
  const names = new Set<string>();
  const sockets = new Set<string>();
  for (const [i, l] of config.listeners.entries()) {
    if (names.has(l.name)) problems.push(`listeners[${i}]: duplicate name ${l.name}`);
    names.add(l.name);
    const sock = `${l.address}:${l.port}`;
    if (sockets.has(sock)) problems.push(`listeners[${i}]: ${sock} is used by two listeners`);
    sockets.add(sock);
    if (l.protocol === "HTTPS" && !l.tls)
      problems.push(`listeners[${i}]: HTTPS listener without tls`);
    for (const p of l.plugins)
      if (!pluginIds.has(p)) problems.push(`listeners[${i}]: plugin ${p} does not exist`);
    for (const [j, vh] of l.virtualHosts.entries()) {
      for (const [k, e] of vh.routes.entries()) {
        if (!routeIds.has(e.routeId)) {
          problems.push(
            `listeners[${i}].virtualHosts[${j}].routes[${k}]: route ${e.routeId} does not exist`,
          );
        }
      }
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}
