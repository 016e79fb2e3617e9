// Files the proxy starts or reads next to its code (worker entry points, the built-in plugins)
// are found from the package root, not from import.meta.url: serving workers run from an esbuild
// bundle in .cache/ (cli/worker-pool.ts), where a module's own URL is the bundle's.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(from: string): string {
  let dir = path.dirname(from);
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, "utf8")) as { name?: string }).name === "rauta")
          return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`the rauta package root is not above ${from}`);
    dir = up;
  }
}

export const PACKAGE_ROOT = findRoot(fileURLToPath(import.meta.url));

/** A path inside the package, e.g. packagePath("proxy/plugins/isolated-worker.ts"). */
export const packagePath = (rel: string) => path.join(PACKAGE_ROOT, rel);
