// Header and query parameter matches of HTTPRoute and GRPCRoute rules → config value matches.
import type { ValueMatch } from "../../proxy/config/index.ts";
import type { Problem } from "./conditions.ts";
import { checkRegex } from "./regex.ts";

export function valueMatches(
  raw: Array<{ name: string; type?: string; value: string }> | undefined,
  field: string,
  lowercase: boolean,
): ValueMatch[] | Problem {
  const result: ValueMatch[] = [];
  const seen = new Set<string>();
  for (const [index, item] of (raw ?? []).entries()) {
    const name = lowercase ? item.name.toLowerCase() : item.name;
    // Spec: when several entries name the same header/parameter, only the first counts.
    if (seen.has(name)) continue;
    seen.add(name);
    const type = item.type ?? "Exact";
    if (type !== "Exact" && type !== "RegularExpression") {
      return {
        reason: "UnsupportedValue",
        message: `${field}[${index}]: match type ${type} is not supported`,
      };
    }
    if (type === "RegularExpression") {
      const error = checkRegex(item.value);
      if (error)
        return {
          reason: "UnsupportedValue",
          message: `${field}[${index}]: regular expression ${JSON.stringify(item.value)} is not valid RE2 (linear-time) syntax: ${error}`,
        };
    }
    result.push({ name, type, value: item.value });
  }
  return result;
}
