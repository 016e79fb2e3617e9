// Every input that ever made a fuzz property fail is kept under
// test/fixtures/fuzz-regressions/<protocol>/ and replayed by test/unit/fuzz/regressions.spec.ts.
//   <name>.bin   the bytes of one write (hand-made cases)
//   <name>.json  { description, writes: [base64, …], meta, problems: [...], found } (what the
//                fuzzers save; meta is what the oracle needs besides the bytes)
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

export type Protocol = "http1" | "h2" | "tls";

export const REGRESSIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../fixtures/fuzz-regressions",
);

export interface Regression {
  name: string;
  file: string;
  description: string;
  writes: Buffer[];
  meta: Record<string, unknown>;
}

interface RegressionFile {
  description?: string;
  writes: string[];
  meta?: Record<string, unknown>;
  problems?: string[];
  found?: string;
}

export function loadRegressions(protocol: Protocol, dir = REGRESSIONS_DIR): Regression[] {
  const d = path.join(dir, protocol);
  if (!fs.existsSync(d)) return [];
  return fs
    .readdirSync(d)
    .filter(f => f.endsWith(".bin") || f.endsWith(".json"))
    .sort()
    .map(f => {
      const file = path.join(d, f);
      if (f.endsWith(".bin"))
        return {
          name: f.slice(0, -4),
          file,
          description: "",
          writes: [fs.readFileSync(file)],
          meta: {},
        };
      const j = JSON.parse(fs.readFileSync(file, "utf8")) as RegressionFile;
      return {
        name: f.slice(0, -5),
        file,
        description: j.description ?? "",
        writes: j.writes.map(w => Buffer.from(w, "base64")),
        meta: j.meta ?? {},
      };
    });
}

/** Saves a failing input (named by its content, so a case found twice is kept once); returns the path. */
export function saveRegression(
  protocol: Protocol,
  writes: Buffer[],
  problems: string[],
  found: string,
  description = "",
  dir = REGRESSIONS_DIR,
  meta: Record<string, unknown> = {},
): string {
  const d = path.join(dir, protocol);
  fs.mkdirSync(d, { recursive: true });
  const hash = crypto.createHash("sha256");
  for (const w of writes) hash.update(w);
  const file = path.join(d, `found-${hash.digest("hex").slice(0, 12)}.json`);
  const body: RegressionFile = {
    description,
    writes: writes.map(w => w.toString("base64")),
    meta,
    problems,
    found,
  };
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}
