#!/usr/bin/env node
// The `rauta` CLI: the composition root of standalone mode, the one place in proxy/ allowed to
// wire the compiler and the proxy together. Each subcommand lives in its own module and is
// loaded on demand so `rauta compile` never pays for the proxy's start-up.
const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  compile: () => import("../cli/compile-command.ts"),
  serve: () => import("../cli/serve-command.ts"),
  proxy: () => import("../cli/proxy-command.ts"),
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? commands[name] : undefined;
if (!load) {
  process.stderr.write(
    `usage: rauta <command> [options]\n\ncommands:\n` +
      `  compile -f <file|dir> [-o json|yaml]   compile Gateway API YAML and print the config and statuses\n` +
      `  serve -f <file|dir> [--workers N]      run the standalone gateway on Gateway API YAML\n` +
      `  proxy --config-source kubernetes|file  run the data plane on a published config (in a cluster)\n`,
  );
  process.exitCode = name === undefined || name === "--help" || name === "-h" ? 0 : 2;
} else {
  const command = await load();
  process.exitCode = await command.run(rest);
}
