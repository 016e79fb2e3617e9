// `rauta compile -f <file|dir> [-f …] [-o json|yaml]`: Gateway API YAML → compiled config and
// the status of every object, printed; exit 1 (with file/document/object/field) on bad input.
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { compile } from "../../capabilities/compiler/index.ts";
import { formatManifestError, loadManifests } from "./manifests.ts";

export async function run(argv: string[]): Promise<number> {
  let values: { file?: string[]; output?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: "string", short: "f", multiple: true },
        output: { type: "string", short: "o", default: "yaml" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    process.stderr.write(`rauta compile: ${(error as Error).message}\n`);
    return 2;
  }
  if (values.help || !values.file?.length || !["json", "yaml"].includes(values.output ?? "")) {
    process.stderr.write("usage: rauta compile -f <file|dir> [-f …] [-o json|yaml]\n");
    return values.help ? 0 : 2;
  }
  let loaded;
  try {
    loaded = loadManifests(values.file);
  } catch (error) {
    process.stderr.write(`rauta compile: ${(error as Error).message}\n`);
    return 1;
  }
  if (loaded.errors.length > 0) {
    for (const error of loaded.errors)
      process.stderr.write(`error: ${formatManifestError(error)}\n`);
    process.stderr.write(`rauta compile: ${loaded.errors.length} error(s); nothing compiled\n`);
    return 1;
  }
  const result = compile(loaded.snapshot, {
    now: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  });
  process.stdout.write(
    values.output === "json"
      ? `${JSON.stringify(result, null, 2)}\n`
      : stringify(result, { lineWidth: 0 }),
  );
  return 0;
}
