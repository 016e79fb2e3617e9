// The config routes and clusters as BackendTrafficPolicies shape them. A route rule is one config
// route; served under a policy it becomes a copy with the policy's rate limit whose backends are
// copies of their clusters with the policy's cluster settings. Copies are named
// "<id>@<policies>", except that a rule served in only one way keeps its own id (its metrics
// label), which is what nearly every rule is.
import type { Cluster, Route } from "../../proxy/config/index.ts";
import { compareStrings } from "./order.ts";
import type { EffectiveSecurity } from "./security-policies.ts";
import { SECURITY_SECTIONS } from "./security-settings.ts";
import type { EffectiveTraffic, Layer } from "./traffic-policies.ts";
import type { TrafficSettings } from "./traffic-settings.ts";

interface ClusterCopy {
  base: string;
  settings: TrafficSettings;
}

export class ServedRoutes {
  /** base route id → variant key ("" = as translated) → route */
  private readonly byBase = new Map<string, Map<string, Route>>();
  private readonly clusterCopies = new Map<string, ClusterCopy>();

  /**
   * Registers `route` as served under `traffic` (BackendTrafficPolicies) and `security`
   * (SecurityPolicies); returns the id entries should name for now.
   */
  serve(
    route: Route,
    traffic: EffectiveTraffic | null,
    stream = false,
    security: EffectiveSecurity | null = null,
  ): string {
    // a TLS stream has no requests to limit or authorize: only cluster sections shape it
    const trafficKey = (stream ? traffic?.clusterKey : traffic?.key) ?? "";
    const securityKey = stream ? "" : (security?.key ?? "");
    const key = [trafficKey, securityKey].filter(k => k !== "").join("+");
    let variants = this.byBase.get(route.id);
    if (!variants) this.byBase.set(route.id, (variants = new Map()));
    if (!variants.has(key))
      variants.set(key, key === "" ? route : this.variant(route, traffic, stream, security));
    return provisional(route.id, key);
  }

  private variant(
    route: Route,
    traffic: EffectiveTraffic | null,
    stream: boolean,
    security: EffectiveSecurity | null,
  ): Route {
    // every SecurityPolicy section is the Route field of its name
    const guarded: Partial<Route> = {};
    if (!stream && security !== null)
      for (const section of SECURITY_SECTIONS) {
        const value = security.settings[section];
        if (value !== undefined) (guarded as Record<string, unknown>)[section] = value;
      }
    if (traffic === null) return { ...route, ...guarded };
    const { rateLimit, timeout, retry, ...clusterSettings } = traffic.settings;
    const clusterId = (id: string | null) => {
      if (id === null || traffic.clusterKey === "") return id;
      const copy = `${id}@${traffic.clusterKey}`;
      this.clusterCopies.set(copy, { base: id, settings: clusterSettings });
      return copy;
    };
    return {
      ...route,
      backends: route.backends.map(b => ({ ...b, clusterId: clusterId(b.clusterId) })),
      ...(rateLimit && !stream ? { rateLimit } : {}),
      // the HTTPRoute's own timeouts and retry win: the policy only fills in what it left out
      ...(timeout && !stream ? { timeouts: { ...timeout, ...route.timeouts } } : {}),
      ...(retry && !stream && route.retry === undefined ? { retry } : {}),
      ...guarded,
    };
  }

  /** The routes with their final ids, and how to turn a provisional id into a final one. */
  finalize(): { routes: Route[]; finalId: (id: string) => string } {
    const rename = new Map<string, string>();
    const routes: Route[] = [];
    for (const [base, variants] of this.byBase) {
      const only = variants.size === 1;
      for (const [key, route] of variants) {
        const id = only ? base : provisional(base, key);
        rename.set(provisional(base, key), id);
        routes.push(route.id === id ? route : { ...route, id });
      }
    }
    routes.sort((a, b) => compareStrings(a.id, b.id));
    return { routes, finalId: id => rename.get(id) ?? id };
  }

  /**
   * Every cluster the served routes name: a Service's own policy shapes its clusters, a copy
   * adds the sections of the policies it was made for on top.
   */
  clusters(
    base: ReadonlyMap<string, Cluster>,
    used: ReadonlySet<string>,
    serviceLayer: (c: Cluster) => Layer | undefined,
  ): Cluster[] {
    const out: Cluster[] = [];
    const shaped = (c: Cluster) => {
      const layer = serviceLayer(c);
      return layer ? withSettings(c, layer.settings) : c;
    };
    for (const id of used) {
      const plain = base.get(id);
      if (plain) {
        out.push(shaped(plain));
        continue;
      }
      const copy = this.clusterCopies.get(id);
      const from = copy && base.get(copy.base);
      if (copy && from) out.push({ ...withSettings(shaped(from), copy.settings), id });
    }
    return out.sort((a, b) => compareStrings(a.id, b.id));
  }
}

const provisional = (id: string, key: string) => (key === "" ? id : `${id}@${key}`);

export function withSettings(c: Cluster, shared: TrafficSettings): Cluster {
  // copies: clusters sharing one policy's objects would print as YAML aliases
  const s = structuredClone(shared);
  const out: Cluster = { ...c };
  if (s.loadBalancer) {
    delete out.hashOn;
    out.lb = s.loadBalancer.lb;
    if (s.loadBalancer.hashOn) out.hashOn = s.loadBalancer.hashOn;
  }
  if (s.circuitBreaker) out.circuitBreaker = s.circuitBreaker;
  if (s.healthCheck) out.healthCheck = s.healthCheck;
  if (s.outlierDetection) out.outlierDetection = s.outlierDetection;
  return out;
}
