// The proxy's heartbeat: a Lease per proxy instance, renewed every few seconds, carrying the
// config generation it serves and the plugins of it that did not load here. The controller reads
// these to set Programmed=True only once the data plane has loaded a generation, and RautaPlugin
// Ready from the plugin problems (capabilities/controller/kubernetes-io.ts).
import { K8s, GenericKind, RegisterKind } from "kubernetes-fluent-client";
import type { PluginProblemsReport } from "../config/index.ts";
import {
  LOADED_GENERATION_ANNOTATION,
  PLUGIN_PROBLEMS_ANNOTATION,
  PROXY_LEASE_LABEL,
  encodePluginProblems,
} from "../config/index.ts";

class ProxyLease extends GenericKind {}
RegisterKind(ProxyLease, {
  group: "coordination.k8s.io",
  version: "v1",
  kind: "Lease",
  plural: "leases",
});

export interface LeaseReporterOptions {
  namespace: string;
  identity: string;
  renewSeconds?: number;
  generation: () => number | undefined;
  /** the plugin load problems of the generation served (Proxy.apply's pluginProblems) */
  pluginProblems?: () => PluginProblemsReport | undefined;
  onProblem?: (message: string, fields: Record<string, unknown>) => void;
}

export class LeaseReporter {
  private readonly options: LeaseReporterOptions;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: LeaseReporterOptions) {
    this.options = options;
  }

  start(): void {
    const renew = this.options.renewSeconds ?? 5;
    const tick = () =>
      void this.report().catch(error =>
        this.options.onProblem?.("could not renew proxy lease", { error: String(error) }),
      );
    tick();
    this.timer = setInterval(tick, renew * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async report(): Promise<void> {
    await K8s(ProxyLease).Apply(this.lease(), { force: true });
  }

  /** The Lease as applied (server-side apply: an annotation left out is removed). */
  lease(now = new Date()): ProxyLease {
    const generation = this.options.generation();
    const renew = this.options.renewSeconds ?? 5;
    const plugins = this.options.pluginProblems?.();
    const problems = plugins ? encodePluginProblems(plugins) : undefined;
    return {
      metadata: {
        name: `rauta-proxy-${this.options.identity}`,
        namespace: this.options.namespace,
        labels: { [PROXY_LEASE_LABEL]: "true" },
        annotations: {
          [LOADED_GENERATION_ANNOTATION]: generation === undefined ? "" : String(generation),
          ...(problems !== undefined ? { [PLUGIN_PROBLEMS_ANNOTATION]: problems } : {}),
        },
      },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: renew * 3,
        renewTime: now.toISOString().replace("Z", "000Z"),
      },
    } as ProxyLease;
  }
}
