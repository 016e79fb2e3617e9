// Admission acts only on objects that belong to us; other controllers' Gateways and routes may
// use features we reject. A lookup that fails (the GatewayClass or Gateway does not exist yet)
// means "not known to be ours": ordering problems are reported in status, never rejected.
import { K8s } from "pepr";
import { CONTROLLER_NAME } from "./common.ts";
import { Gateway, GatewayClass } from "./kinds.ts";

export async function classIsOurs(className: string | undefined): Promise<boolean> {
  if (!className) return false;
  try {
    const gatewayClass = await K8s(GatewayClass).Get(className);
    return (
      (gatewayClass as { spec?: { controllerName?: string } }).spec?.controllerName ===
      CONTROLLER_NAME
    );
  } catch {
    return false;
  }
}

export async function routeIsOurs(route: {
  metadata?: { namespace?: string };
  spec?: {
    parentRefs?: Array<{ group?: string; kind?: string; namespace?: string; name: string }>;
  };
}): Promise<boolean> {
  for (const ref of route.spec?.parentRefs ?? []) {
    if (
      (ref.group ?? "gateway.networking.k8s.io") !== "gateway.networking.k8s.io" ||
      (ref.kind ?? "Gateway") !== "Gateway"
    )
      continue;
    try {
      const gateway = await K8s(Gateway)
        .InNamespace(ref.namespace ?? route.metadata?.namespace ?? "default")
        .Get(ref.name);
      if (
        await classIsOurs(
          (gateway as { spec?: { gatewayClassName?: string } }).spec?.gatewayClassName,
        )
      )
        return true;
    } catch {
      // not found or not readable: not known to be ours
    }
  }
  return false;
}
