// Admission for HTTPRoutes and GRPCRoutes attached to our Gateways: reject what can never work
// (invalid or non-RE2 regex, incompatible filters, bad durations, an unparsable rauta.io/plugins
// annotation). What depends on other objects (a missing Service or ReferenceGrant) is not
// rejected: objects arrive in any order, so that is reported in status instead.
import { BackendResolver } from "../compiler/backends.ts";
import { PLUGINS_ANNOTATION, PluginIndex } from "../compiler/plugins.ts";
import type { KindedRoute } from "../compiler/rules.ts";
import { translateKindedRules } from "../compiler/rules.ts";
import type { HTTPRoute } from "../compiler/snapshot.ts";

export function validateRoute(source: KindedRoute): string[] {
  const { route, kind } = source;
  const id = `${kind} ${route.metadata.namespace ?? "default"}/${route.metadata.name}`;
  const problems: string[] = [];
  const annotation = route.metadata.annotations?.[PLUGINS_ANNOTATION];
  if (annotation !== undefined) {
    const parsed = PluginIndex.parseAnnotation(annotation);
    if (parsed.problem)
      problems.push(
        `${id}: metadata.annotations: ${parsed.problem}; use a comma-separated list of RautaPlugin names`,
      );
  }
  // With no Services or plugins known, only what is wrong in the route itself remains invalid.
  const translation = translateKindedRules(
    source,
    new BackendResolver([], [], []),
    new PluginIndex([]),
  );
  for (const problem of translation.invalid) problems.push(`${id}: ${problem.message}`);
  return problems;
}

export const validateHTTPRoute = (route: HTTPRoute): string[] =>
  validateRoute({ kind: "HTTPRoute", route });
