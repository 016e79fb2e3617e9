// The compiler is bundled into the Pepr module (Node 22 in pepr's controller image; the module
// Secret must stay under 1 MiB gzipped+base64). It must stay pure: no filesystem, network,
// process or Kubernetes-client imports, and a small share of that budget.
import { expect } from "chai";
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { resolve } from "node:path";

const entry = resolve(import.meta.dirname, "../../../capabilities/compiler/index.ts");
// Of the 1 MiB module budget, the compiler (with zod and re2js) may use a quarter.
const BUDGET_GZIP_BYTES = 256 * 1024;
const FORBIDDEN = [
  /^node:(fs|net|http|https|http2|child_process|dgram|tls|worker_threads|cluster)/,
  /^pepr$/,
  /^kubernetes-fluent-client/,
  /^@kubernetes\//,
  /^undici/,
];

describe("compiler bundle", () => {
  it("bundles for Node 22 with only pure imports, within its share of the Pepr module budget", async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      target: "node22",
      format: "esm",
      minify: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const external = Object.values(result.metafile.inputs).flatMap(input =>
      input.imports.filter(i => i.external).map(i => i.path),
    );
    for (const path of external) {
      expect(
        FORBIDDEN.some(re => re.test(path)),
        `compiler imports ${path}`,
      ).to.equal(false);
    }
    const gzipped = gzipSync(result.outputFiles[0]!.contents).length;
    expect(gzipped, `compiler bundle is ${gzipped} bytes gzipped`).to.be.below(BUDGET_GZIP_BYTES);
  });
});
