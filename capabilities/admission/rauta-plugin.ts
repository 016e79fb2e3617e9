// Admission for RautaPlugins: a source that can never load (no source or two, a URL that is not
// http(s) or not pinned by sha256, digests that disagree) and a spec.config that its built-in's
// shipped schema or its own spec.configSchema rejects. The checks are the compiler's own
// (compiler/plugins.ts), so admission and status always agree.
import type { BuiltinSchemas } from "../compiler/plugin-config.ts";
import { pluginSpecProblems } from "../compiler/plugins.ts";
import type { RautaPlugin } from "../compiler/snapshot.ts";

export interface Admission {
  problems: string[];
  /** what could not be checked (a built-in that ships no schema): shown, never denied */
  warnings: string[];
}

export function admitRautaPlugin(plugin: RautaPlugin, builtinSchemas?: BuiltinSchemas): Admission {
  const id = `RautaPlugin ${plugin.metadata.namespace ?? "default"}/${plugin.metadata.name}`;
  const { problems, notes } = pluginSpecProblems(plugin, builtinSchemas);
  return {
    problems: problems.map(p => `${id}: ${p.message}`),
    warnings: notes.map(n => `${id}: ${n}`),
  };
}

export function validateRautaPlugin(
  plugin: RautaPlugin,
  builtinSchemas?: BuiltinSchemas,
): string[] {
  return admitRautaPlugin(plugin, builtinSchemas).problems;
}
