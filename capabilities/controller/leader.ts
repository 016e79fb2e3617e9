// Leader election over a coordination Lease, so two controller replicas never fight over the
// config or status. Acquisition is a create (fails if the Lease exists); renewal and takeover are
// JSON patches guarded by a `test` of the resourceVersion, so two replicas cannot both succeed.
import { K8s } from "pepr";
import { Lease } from "../kinds.ts";

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  renewTime?: string;
  leaseTransitions?: number;
}
export interface LeaseLike {
  metadata?: { resourceVersion?: string };
  spec?: LeaseSpec;
}

export type LeaseAction = "create" | "renew" | "takeover" | "wait";

// Pure: what a candidate should do with the Lease as it stands.
export function leaseAction(
  lease: LeaseLike | undefined,
  identity: string,
  nowMs: number,
): LeaseAction {
  if (!lease) return "create";
  const spec = lease.spec ?? {};
  if (spec.holderIdentity === identity) return "renew";
  const renewed = spec.renewTime ? Date.parse(spec.renewTime) : NaN;
  const expired =
    !Number.isFinite(renewed) || renewed + (spec.leaseDurationSeconds ?? 15) * 1000 < nowMs;
  return expired || !spec.holderIdentity ? "takeover" : "wait";
}

const microTime = (ms: number) => new Date(ms).toISOString().replace("Z", "000Z");

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds?: number;
  onChange: (leader: boolean) => void;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export class LeaderElector {
  private readonly options: LeaderElectorOptions;
  private leader = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: LeaderElectorOptions) {
    this.options = options;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    const period = ((this.options.leaseSeconds ?? 15) * 1000) / 3;
    const tick = () =>
      void this.attempt().then(
        leader => this.set(leader),
        error => {
          this.options.log?.("leader election attempt failed", { error: String(error) });
          this.set(false);
        },
      );
    tick();
    this.timer = setInterval(tick, period);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.set(false);
  }

  private set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.options.onChange(leader);
  }

  private async attempt(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const leaseSeconds = this.options.leaseSeconds ?? 15;
    let lease: LeaseLike | undefined;
    try {
      lease = (await K8s(Lease).InNamespace(namespace).Get(name)) as LeaseLike;
    } catch (error) {
      if ((error as { status?: number }).status !== 404) throw error;
    }
    const now = Date.now();
    const action = leaseAction(lease, identity, now);
    if (action === "wait") return false;
    try {
      if (action === "create") {
        await K8s(Lease).Create({
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: leaseSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        } as Lease);
      } else {
        const patch = [
          {
            op: "test" as const,
            path: "/metadata/resourceVersion",
            value: lease!.metadata?.resourceVersion,
          },
          {
            op: "replace" as const,
            path: "/spec",
            value: {
              holderIdentity: identity,
              leaseDurationSeconds: leaseSeconds,
              renewTime: microTime(now),
              acquireTime:
                action === "takeover"
                  ? microTime(now)
                  : ((lease!.spec as { acquireTime?: string }).acquireTime ?? microTime(now)),
              leaseTransitions:
                (lease!.spec?.leaseTransitions ?? 0) + (action === "takeover" ? 1 : 0),
            },
          },
        ];
        await K8s(Lease, { namespace, name }).Patch(patch);
      }
      return true;
    } catch (error) {
      // 409/422: someone else created or changed the Lease first; try again next period.
      const status = (error as { status?: number }).status;
      if (status === 409 || status === 422) return false;
      throw error;
    }
  }
}
