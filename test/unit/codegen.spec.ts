import { expect } from "chai";
import { mkdtempSync, readFileSync, readdirSync, statSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { tmpdir } from "node:os";
import { generate } from "../../hack/codegen/codegen.ts";

const repoRoot = resolve(import.meta.dirname, "../..");

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

describe("codegen", () => {
  it("generated/ is exactly what hack/codegen produces from crds/", async () => {
    const out = mkdtempSync(join(tmpdir(), "rauta-codegen-"));
    try {
      await generate(out);
      const committed = join(repoRoot, "generated");
      const fresh = listFiles(out)
        .map(f => relative(out, f))
        .sort();
      expect(
        listFiles(committed)
          .map(f => relative(committed, f))
          .sort(),
      ).to.deep.equal(fresh);
      for (const file of fresh) {
        const same = readFileSync(join(out, file)).equals(readFileSync(join(committed, file)));
        expect(same, `generated/${file} is stale: run npm run codegen`).to.equal(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
