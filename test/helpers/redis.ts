// A real redis-server (Debian's package, installed on first use) on a free loopback port, for the
// global rate limit's tests: started, stopped and started again on the same port like an outage.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { ensureHostTools } from "../../hack/cluster/build.ts";
import { freePort, portOpen } from "./net.ts";

export interface RedisServer {
  url: string;
  port: number;
  /** stops the server (an outage); start() brings it back on the same port, empty */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that hangs (connections stay, nothing answers) */
  freeze(): void;
  thaw(): void;
}

function listening(port: number, p: ChildProcess, log: () => string): Promise<void> {
  return portOpen(port, {
    timeoutMs: 15_000,
    what: "redis-server",
    gone: () => (p.exitCode !== null ? `exit ${p.exitCode}: ${log()}` : null),
  });
}

export async function startRedis(): Promise<RedisServer> {
  ensureHostTools({ "redis-server": "redis-server" });
  const port = await freePort();
  let p: ChildProcess | null = null;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    start: async () => {
      let output = "";
      // nothing on disk: each start is an empty Redis, as after a failover to a fresh replica
      p = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      p.stdout!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-2000)));
      p.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-2000)));
      await listening(port, p, () => output);
    },
    freeze: () => void p?.kill("SIGSTOP"),
    thaw: () => void p?.kill("SIGCONT"),
    stop: async () => {
      const q = p;
      p = null;
      if (q === null || q.exitCode !== null || q.signalCode !== null) return;
      const exited = new Promise(r => q.once("exit", r));
      q.kill("SIGKILL");
      await exited;
    },
  };
  await server.start();
  return server;
}
