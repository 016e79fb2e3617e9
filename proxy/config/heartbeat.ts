// How a proxy tells the control plane which config generation it serves: a coordination Lease
// per proxy instance, labelled PROXY_LEASE_LABEL, renewed while the proxy lives, annotated with
// LOADED_GENERATION_ANNOTATION. A Lease not renewed within its duration is a proxy that is gone.
// PLUGIN_PROBLEMS_ANNOTATION carries the plugins of the served generation that did not load
// there (RautaPlugin Ready); absent, nothing failed.
import { z } from "zod";

export const PROXY_LEASE_LABEL = "rauta.io/proxy";
export const LOADED_GENERATION_ANNOTATION = "rauta.io/loaded-generation";
export const PLUGIN_PROBLEMS_ANNOTATION = "rauta.io/plugin-problems";
// A Lease's annotations share 256 KiB with everything else in its metadata; a proxy's report
// stays a small, fixed share of that however many plugins fail, and however long their errors.
export const PLUGIN_PROBLEMS_MAX_BYTES = 8 * 1024;
const MESSAGE_MAX_CHARS = 400;

export const PluginLoadProblem = z
  .object({
    // "<namespace>/<name>" of the RautaPlugin (the config plugin id)
    plugin: z.string(),
    reason: z.string(),
    message: z.string(),
    // the digest still serving in its place, when an earlier version had loaded
    serving: z.string().optional(),
  })
  .strict();
export type PluginLoadProblem = z.infer<typeof PluginLoadProblem>;

export const PluginProblemsReport = z
  .object({
    // the generation whose plugins these are (the one served)
    generation: z.number().int().min(0),
    problems: z.array(PluginLoadProblem),
    // problems left out to stay within the size bound: the plugins they concern are unknown
    omitted: z.number().int().min(1).optional(),
  })
  .strict();
export type PluginProblemsReport = z.infer<typeof PluginProblemsReport>;

const byteLength = (s: string) => Buffer.byteLength(s, "utf8");

function clip(text: string): string {
  return text.length <= MESSAGE_MAX_CHARS ? text : `${text.slice(0, MESSAGE_MAX_CHARS - 1)}…`;
}

/**
 * The annotation value: compact JSON, at most maxBytes, problems sorted by plugin id; undefined
 * when there is nothing to report (the annotation is then left out, and so removed).
 */
export function encodePluginProblems(
  report: { generation: number; problems: readonly PluginLoadProblem[] },
  maxBytes = PLUGIN_PROBLEMS_MAX_BYTES,
): string | undefined {
  if (report.problems.length === 0) return undefined;
  const problems = [...report.problems]
    .sort((a, b) => (a.plugin < b.plugin ? -1 : a.plugin > b.plugin ? 1 : 0))
    .map(p => ({
      plugin: p.plugin,
      reason: p.reason,
      message: clip(p.message),
      ...(p.serving !== undefined ? { serving: p.serving } : {}),
    }));
  const kept: typeof problems = [];
  // room for the envelope with the largest possible "omitted"
  const envelope = byteLength(
    JSON.stringify({ generation: report.generation, problems: [], omitted: problems.length }),
  );
  let size = envelope;
  for (const problem of problems) {
    const entry = byteLength(JSON.stringify(problem)) + (kept.length > 0 ? 1 : 0);
    if (size + entry > maxBytes) break;
    kept.push(problem);
    size += entry;
  }
  const omitted = problems.length - kept.length;
  return JSON.stringify({
    generation: report.generation,
    problems: kept,
    ...(omitted > 0 ? { omitted } : {}),
  });
}

/** A Lease annotation → the report; undefined when absent or not one (never trusted blindly). */
export function decodePluginProblems(value: string | undefined): PluginProblemsReport | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    const parsed = PluginProblemsReport.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
