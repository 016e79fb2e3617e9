// `rauta plugin <new|build|test>`: the plugin author's commands.
import { NEW_USAGE, runBuild, runNew } from "./plugin-new.ts";
import { TEST_USAGE, runPluginTest } from "./plugin-test.ts";

const USAGE = `usage: rauta plugin <command>

  new --lang ts|go|rust NAME         a plugin project from the SDK's template
  build [DIR]                        build it into DIR/plugin.wasm
  test PLUGIN.wasm --request req.yaml [--config cfg.yaml]
                                     run it on one request, sandboxed as in the proxy

${NEW_USAGE}
${TEST_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "test") return runPluginTest(rest);
  if (sub === "new") return runNew(rest);
  if (sub === "build") return runBuild(rest);
  process.stderr.write(USAGE);
  return sub === undefined || sub === "--help" || sub === "-h" ? 0 : 2;
}
