// The proxy's heartbeat: a Lease per proxy instance, renewed every few seconds, carrying the
// config generation it serves. The controller reads these to set Programmed=True only once the
// data plane has loaded a generation (capabilities/controller/kubernetes-io.ts).
import { K8s, GenericKind, RegisterKind } from "kubernetes-fluent-client";
import { LOADED_GENERATION_ANNOTATION, PROXY_LEASE_LABEL } from "../config/index.ts";

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
    const generation = this.options.generation();
    const renew = this.options.renewSeconds ?? 5;
    await K8s(ProxyLease).Apply(
      {
        metadata: {
          name: `rauta-proxy-${this.options.identity}`,
          namespace: this.options.namespace,
          labels: { [PROXY_LEASE_LABEL]: "true" },
          annotations: {
            [LOADED_GENERATION_ANNOTATION]: generation === undefined ? "" : String(generation),
          },
        },
        spec: {
          holderIdentity: this.options.identity,
          leaseDurationSeconds: renew * 3,
          renewTime: new Date().toISOString().replace("Z", "000Z"),
        },
      } as ProxyLease,
      { force: true },
    );
  }
}
