// Admission for RautaPlugins: the configuration must satisfy the plugin's JSON Schema
// (spec.configSchema), and that schema must itself be usable.
import { z } from "zod";
import type { RautaPlugin } from "../compiler/snapshot.ts";

function fieldPath(path: PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`),
    "spec.config",
  );
}

export function validateRautaPlugin(plugin: RautaPlugin): string[] {
  const id = `RautaPlugin ${plugin.metadata.namespace ?? "default"}/${plugin.metadata.name}`;
  const schema = plugin.spec.configSchema;
  if (!schema) return [];
  let validator: z.ZodType;
  try {
    validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (error) {
    return [
      `${id}: spec.configSchema is not a usable JSON Schema: ${error instanceof Error ? error.message : String(error)}`,
    ];
  }
  const result = validator.safeParse(plugin.spec.config ?? {});
  return result.success
    ? []
    : result.error.issues.map(issue => `${id}: ${fieldPath(issue.path)}: ${issue.message}`);
}
