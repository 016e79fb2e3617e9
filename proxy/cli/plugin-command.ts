// `rauta plugin <new|build|test>`: the plugin author's commands.
import { TEST_USAGE, runPluginTest } from "./plugin-test.ts";

const USAGE = `usage: rauta plugin <command>

  test PLUGIN.wasm --request req.yaml [--config cfg.yaml]   run a plugin on one request, sandboxed as in the proxy

${TEST_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "test") return runPluginTest(rest);
  process.stderr.write(USAGE);
  return sub === undefined || sub === "--help" || sub === "-h" ? 0 : 2;
}
