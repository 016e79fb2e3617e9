// URLRewrite / RequestRedirect path modifiers, as the Gateway API defines them.
import type { PathModifier } from "../config/schema.ts";

export function rewritePath(path: string, modifier: PathModifier, prefixLength: number): string {
  if (modifier.type === "ReplaceFullPath") return modifier.value || "/";
  if (prefixLength < 0) return path;
  const rest = path.slice(prefixLength); // "" or "/..."
  let out: string;
  if (modifier.value.endsWith("/") && rest.startsWith("/")) out = modifier.value + rest.slice(1);
  else out = modifier.value + rest;
  return out === "" ? "/" : out;
}
