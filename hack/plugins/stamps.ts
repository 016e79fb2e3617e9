// Build stamps of the plugin build scripts: one hash over what a module is made of (the
// toolchain and flags in `header`, then every source file), written next to the module; a module
// whose stamp matches is up to date.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { relative } from "node:path";

export async function sourcesHash(header: string, root: string, files: string[]): Promise<string> {
  const h = createHash("sha256");
  h.update(`${header}\n`);
  for (const file of files) {
    h.update(`${relative(root, file)}\n`);
    h.update(await readFile(file));
    h.update("\n");
  }
  return h.digest("hex");
}

export async function readStamp(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return null;
  }
}

export async function size(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}
