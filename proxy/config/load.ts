// Loading a CompiledConfig: schema validation (zod) plus the cross-reference checks the schema
// cannot express. Everything here runs off the request path; a config that fails is refused and
// the previous generation keeps serving.
import { readFile } from "node:fs/promises";
import { CompiledConfig } from "./schema.ts";
import type { CompiledConfig as CompiledConfigT } from "./schema.ts";
import { ConfigError, checkConfig } from "./check.ts";
import type { ValidateOptions } from "./check.ts";

export { ConfigError, checkConfig } from "./check.ts";
export type { ValidateOptions } from "./check.ts";

/** Schema validation (zod) and then checkConfig; throws ConfigError. */
export function validateConfig(input: unknown, options: ValidateOptions = {}): CompiledConfigT {
  const parsed = CompiledConfig.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(i => `${i.path.join(".") || "(root)"}: ${i.message}`),
    );
  }
  return checkConfig(parsed.data, options);
}

export async function loadConfigFile(
  path: string,
  options?: ValidateOptions,
): Promise<CompiledConfigT> {
  const text = await readFile(path, "utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`${path}: not JSON: ${(err as Error).message}`]);
  }
  return validateConfig(json, options);
}
