import { RE2JS } from "re2js";

// Regexes in matches must run in linear time on the data plane. re2js implements RE2's syntax
// and rejects what only a backtracking engine can run (backreferences, lookaround), so a pattern
// it compiles is safe; its message says what is wrong with one it refuses.
export function checkRegex(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
