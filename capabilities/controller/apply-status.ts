// Server-side apply of a status subresource. kubernetes-fluent-client applies only the main
// resource (its PatchStatus is a JSON merge patch, which can never remove a field we stopped
// reporting), so this builds the same request KFC builds for Apply, against "<object>/status",
// with KFC's own field manager: every write of the controller goes through one manager.
import type { GenericClass } from "kubernetes-fluent-client";
import { modelToGroupVersionKind } from "kubernetes-fluent-client";
import { k8sCfg, pathBuilder } from "kubernetes-fluent-client/dist/fluent/utils.js";
import type { FetchMethods } from "kubernetes-fluent-client/dist/fluent/shared-types.js";
import { fetch } from "pepr";

export const FIELD_MANAGER = "pepr";

export async function applyStatus(
  model: GenericClass,
  namespace: string | undefined,
  name: string,
  status: Record<string, unknown>,
): Promise<void> {
  const gvk = modelToGroupVersionKind(model.name);
  const { opts, serverUrl } = await k8sCfg("PATCH" as FetchMethods);
  const url = pathBuilder(String(serverUrl), model, { name, ...(namespace ? { namespace } : {}) });
  url.pathname = `${url.pathname}/status`;
  url.searchParams.set("fieldManager", FIELD_MANAGER);
  // Statuses are ours to own: take over fields another manager (e.g. an earlier merge patch)
  // holds. HTTPRoute parents of other controllers are carried in the list we send.
  url.searchParams.set("force", "true");
  const body = {
    apiVersion: gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version,
    kind: gvk.kind,
    metadata: { name, ...(namespace ? { namespace } : {}) },
    status,
  };
  const response = await fetch(url.toString(), {
    ...opts,
    method: "PATCH",
    headers: { ...opts.headers, "Content-Type": "application/apply-patch+yaml" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    throw Object.assign(
      new Error(
        `apply status of ${gvk.kind} ${namespace ? `${namespace}/` : ""}${name}: HTTP ${response.status} ${response.statusText}`,
      ),
      {
        status: response.status,
      },
    );
  }
}
