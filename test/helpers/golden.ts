// Golden fixtures: test/fixtures/compiler/<case>/input.yaml → output.yaml (compiled config and
// statuses) or errors.yaml (loader errors). UPDATE_GOLDEN=1 rewrites the expected files; review
// every rewritten file by hand before committing it.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { compile } from "../../capabilities/compiler/index.ts";
import { loadManifests } from "../../proxy/cli/manifests.ts";

export const FIXTURES = resolve(import.meta.dirname, "../fixtures/compiler");
export const GOLDEN_NOW = "2026-01-01T00:00:00Z";

export function fixtureCases(): string[] {
  return readdirSync(FIXTURES)
    .filter(name => existsSync(join(FIXTURES, name, "input.yaml")))
    .sort();
}

export interface GoldenOutcome {
  file: string;
  actual: unknown;
  expected: unknown;
}

export function runFixture(name: string): GoldenOutcome {
  const dir = join(FIXTURES, name);
  const loaded = loadManifests([join(dir, "input.yaml")]);
  const [file, actual] =
    loaded.errors.length > 0
      ? ["errors.yaml", loaded.errors.map(e => ({ ...e, file: "input.yaml" }))]
      : ["output.yaml", compile(loaded.snapshot, { now: GOLDEN_NOW })];
  const path = join(dir, file);
  // Round-trip through YAML so the comparison sees exactly what the file holds. Objects the
  // compiler shares are written out each time, never as &anchors a reviewer has to chase.
  const text = stringify(actual, { lineWidth: 0, aliasDuplicateObjects: false });
  const normalized = parse(text) as unknown;
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, text);
  const expected = existsSync(path) ? (parse(readFileSync(path, "utf8")) as unknown) : undefined;
  return { file, actual: normalized, expected };
}
