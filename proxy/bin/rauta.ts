#!/usr/bin/env node
// The `rauta` CLI: the composition root of standalone mode, the one place in proxy/ allowed to
// wire the compiler and the proxy together. Each subcommand lives in its own module and is
// loaded on demand so `rauta compile` never pays for the proxy's start-up.
import "../runtime/warnings.ts";
import { hasV8Flags, proxyV8Flags, servingV8Flags, withV8Flags } from "../runtime/v8-flags.ts";

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  compile: () => import("../cli/compile-command.ts"),
  serve: () => import("../cli/serve-command.ts"),
  proxy: () => import("../cli/proxy-command.ts"),
  plugin: () => import("../cli/plugin-command.ts"),
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? commands[name] : undefined;
if (!load) {
  process.stderr.write(
    `usage: rauta <command> [options]\n\ncommands:\n` +
      `  compile -f <file|dir> [-o json|yaml]   compile Gateway API YAML and print the config and statuses\n` +
      `  serve -f <file|dir> [--workers N]      run the standalone gateway on Gateway API YAML\n` +
      `  proxy --config-source kubernetes|file  run the data plane on a published config (in a cluster)\n` +
      `  plugin new|build|test                  write, build and try a WASM plugin\n`,
  );
  process.exitCode = name === undefined || name === "--help" || name === "-h" ? 0 : 2;
} else if (name === "proxy" && reexecWithProxyV8Flags()) {
  // unreachable: the process image was replaced
} else {
  const command = await load();
  process.exitCode = await command.run(rest);
}

// `rauta proxy` serves in this very process, so it needs the proxy's V8 heap settings
// (runtime/v8-flags.ts) from the start: re-exec in place (same PID, so a container's PID 1 stays
// PID 1) unless they are already set. RAUTA_V8_REEXEC guards against a loop.
function reexecWithProxyV8Flags(): boolean {
  if (!proxyV8Flags().length) return false; // RAUTA_V8_FLAGS="": V8's defaults, no re-exec
  const flags = servingV8Flags();
  if (hasV8Flags(process.execArgv, flags) || process.env.RAUTA_V8_REEXEC) return false;
  if (typeof process.execve !== "function") return false;
  process.execve(
    process.execPath,
    [process.execPath, ...withV8Flags(process.execArgv, flags), ...process.argv.slice(1)],
    { ...process.env, RAUTA_V8_REEXEC: "1" },
  );
  return true;
}
