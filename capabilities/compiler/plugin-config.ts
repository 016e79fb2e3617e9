// A RautaPlugin's spec.config against the JSON Schemas that bind it: the shipped schema of its
// built-in (plugins-sdk/builtins/<name>/schema.json, carried by generated/rauta/builtin-plugins.ts)
// and the user's own spec.configSchema. One validator for admission (which rejects) and for the
// compiler (which reports ConfigInvalid, since objects can reach the store without admission).
import { z } from "zod";
import { BUILTIN_PLUGIN_SCHEMAS } from "../../generated/rauta/builtin-plugins.ts";
import type { RautaPlugin } from "./snapshot.ts";

/** Config schema of each built-in by name; null or absent: the built-in ships none. */
export type BuiltinSchemas = Readonly<Record<string, Record<string, unknown> | null | undefined>>;

export interface ConfigCheck {
  /** "spec.config.<path>: <message>", or a spec.configSchema the user must fix */
  issues: string[];
  /** what could not be checked, and why (not the user's to fix: reported, never rejected) */
  notes: string[];
}

// Building a zod schema from JSON Schema costs far more than using it, and compile() runs on
// every reconcile: validators are kept per schema object (the store hands the same objects to
// every compile until they change; the generated built-in schemas never change).
const validators = new WeakMap<object, z.ZodType | Error>();

function validatorFor(schema: Record<string, unknown>): z.ZodType | Error {
  let validator = validators.get(schema);
  if (validator === undefined) {
    try {
      validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch (error) {
      validator = error instanceof Error ? error : new Error(String(error));
    }
    validators.set(schema, validator);
  }
  return validator;
}

// zod cannot check `not`, and without it a `oneOf` whose branches `not` tells apart matches
// twice and rejects every value (as the CRD loader finds, proxy/cli/manifests.ts). A shipped
// schema is made checkable by dropping `not` and reading `oneOf` as `anyOf`: admission then
// misses a few combinations the plugin itself still refuses at load, and never rejects a config
// the plugin accepts.
function checkable(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(checkable);
  if (schema === null || typeof schema !== "object") return schema;
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "not") continue;
    result[key === "oneOf" ? "anyOf" : key] = checkable(value);
  }
  return result;
}

// Built-in schemas: relaxed once, by schema object.
const relaxed = new WeakMap<object, Record<string, unknown>>();

function shipped(schema: Record<string, unknown>): Record<string, unknown> {
  let result = relaxed.get(schema);
  if (result === undefined) {
    result = checkable(schema) as Record<string, unknown>;
    relaxed.set(schema, result);
  }
  return result;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`),
    "spec.config",
  );
}

function issuesOf(validator: z.ZodType, config: unknown): string[] {
  const result = validator.safeParse(config);
  return result.success
    ? []
    : result.error.issues.map(issue => `${fieldPath(issue.path)}: ${issue.message}`);
}

export function checkPluginConfig(
  plugin: RautaPlugin,
  builtinSchemas: BuiltinSchemas = BUILTIN_PLUGIN_SCHEMAS,
): ConfigCheck {
  const config = plugin.spec.config ?? {};
  const issues: string[] = [];
  const notes: string[] = [];
  const builtin = plugin.spec.source?.builtin;
  if (builtin !== undefined) {
    const schema = Object.hasOwn(builtinSchemas, builtin) ? builtinSchemas[builtin] : undefined;
    const validator = schema ? validatorFor(shipped(schema)) : undefined;
    if (!schema)
      notes.push(
        `spec.config is not checked: built-in ${builtin} ships no config schema (plugins-sdk/builtins/${builtin}/schema.json)`,
      );
    else if (validator instanceof Error)
      notes.push(
        `spec.config is not checked: the config schema of built-in ${builtin} is not usable: ${validator.message}`,
      );
    else if (validator) issues.push(...issuesOf(validator, config));
  }
  const own = plugin.spec.configSchema;
  if (own) {
    const validator = validatorFor(own);
    if (validator instanceof Error)
      issues.push(`spec.configSchema is not a usable JSON Schema: ${validator.message}`);
    else issues.push(...issuesOf(validator, config));
  }
  return { issues: [...new Set(issues)], notes };
}
