// toxiproxy (github.com/Shopify/toxiproxy/v2), built from its Go module and cached, and a small
// typed client for its HTTP API. The chaos suite (hack/chaos/scenarios.ts) puts one toxiproxy
// proxy in front of every backend endpoint and injects faults with toxics.
//
// Cache: ~/.cache/rauta/toxiproxy-<version>/toxiproxy-server (RAUTA_CACHE_DIR overrides the
// root, as for the dev cluster's binaries). Building needs Go ≥ 1.26 and the Go module proxy.
//
//   node hack/chaos/toxiproxy.ts          builds (once) and prints the binary's path
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot } from "../cluster/config.ts";
import { withLock } from "../cluster/util.ts";
import { log, track } from "./harness.ts";
import { freePort } from "../../test/helpers/net.ts";

/** The newest toxiproxy the Go module proxy serves that builds with Go 1.26. */
export const TOXIPROXY_VERSION = "v2.12.0";
const MODULE = "github.com/Shopify/toxiproxy/v2";

export function toxiproxyPath(version = TOXIPROXY_VERSION): string {
  return join(cacheRoot, `toxiproxy-${version}`, "toxiproxy-server");
}

/** `go` from PATH, else the standard install location. */
function goBin(): string {
  if (spawnSync("go", ["version"], { stdio: "ignore" }).status === 0) return "go";
  if (existsSync("/usr/local/go/bin/go")) return "/usr/local/go/bin/go";
  throw new Error(
    "toxiproxy: the Go toolchain was not found (need go >= 1.26 on PATH or in /usr/local/go; " +
      "it builds toxiproxy from its Go module)",
  );
}

/** The toxiproxy server binary, built from the Go module on first use (idempotent, cached). */
export function ensureToxiproxy(version = TOXIPROXY_VERSION): string {
  const out = toxiproxyPath(version);
  if (existsSync(out)) return out;
  const go = goBin();
  mkdirSync(cacheRoot, { recursive: true });
  // one build at a time on this machine (shared with the dev cluster's builds)
  withLock(join(cacheRoot, ".build.lock"), 15 * 60_000, () => {
    if (existsSync(out)) return;
    const dir = join(out, "..");
    mkdirSync(dir, { recursive: true });
    const gobin = mkdtempSync(join(dir, ".build-"));
    log(`building toxiproxy ${version} (${MODULE}/cmd/server) → ${out}`);
    const t0 = Date.now();
    const r = spawnSync(
      go,
      ["install", "-trimpath", "-ldflags=-s -w", `${MODULE}/cmd/server@${version}`],
      {
        stdio: ["ignore", "inherit", "inherit"],
        env: {
          ...process.env,
          GOBIN: gobin,
          CGO_ENABLED: "0",
          GOFLAGS: "-buildvcs=false",
          // `go install pkg@version` ignores any go.mod; never pick up one from the cwd
          GO111MODULE: "on",
        },
        cwd: dir,
      },
    );
    try {
      if (r.status !== 0)
        throw new Error(
          `toxiproxy: go install ${MODULE}/cmd/server@${version} failed (exit ${r.status})`,
        );
      renameSync(join(gobin, "server"), out);
    } finally {
      rmSync(gobin, { recursive: true, force: true });
    }
    log(`built toxiproxy in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The HTTP API (toxiproxy v2: /proxies, /proxies/{name}/toxics, /reset, /version)

export type Stream = "upstream" | "downstream";

/** The toxics the chaos suite uses, with their attributes (times in ms, rates in KB/s). */
export type ToxicKind =
  /** delays every chunk by latency ± jitter */
  | { type: "latency"; attributes: { latency: number; jitter?: number } }
  /** passes data at `rate` KB/s */
  | { type: "bandwidth"; attributes: { rate: number } }
  /** on the first data, waits `timeout` and closes with a TCP RST (SO_LINGER 0), data dropped */
  | { type: "reset_peer"; attributes: { timeout: number } }
  /** blackhole: drops all data; closes after `timeout` (0: never) */
  | { type: "timeout"; attributes: { timeout: number } }
  /** delays the close (FIN) by `delay` */
  | { type: "slow_close"; attributes: { delay: number } }
  /** closes the connection after `bytes` bytes */
  | { type: "limit_data"; attributes: { bytes: number } };

export type Toxic = ToxicKind & {
  name?: string;
  /** downstream = from the backend to the client (responses); default downstream */
  stream?: Stream;
  /** share of connections the toxic applies to, 0..1 (default 1) */
  toxicity?: number;
};

export interface ProxySpec {
  name: string;
  listen: string;
  upstream: string;
  enabled?: boolean;
}

export interface ProxyInfo extends Required<ProxySpec> {
  toxics: Array<ToxicKind & { name: string; stream: Stream; toxicity: number }>;
}

export class ToxiproxyClient {
  readonly base: string;
  constructor(base: string) {
    this.base = base.replace(/\/$/, "");
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${text.trim()}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  version(): Promise<unknown> {
    return this.call("GET", "/version");
  }

  createProxy(spec: ProxySpec): Promise<ProxyInfo> {
    return this.call("POST", "/proxies", { enabled: true, ...spec });
  }

  proxies(): Promise<Record<string, ProxyInfo>> {
    return this.call("GET", "/proxies");
  }

  async deleteProxy(name: string): Promise<void> {
    await this.call("DELETE", `/proxies/${encodeURIComponent(name)}`);
  }

  /** Disabled: the listener is closed and every connection through it is dropped. */
  setEnabled(name: string, enabled: boolean): Promise<ProxyInfo> {
    return this.call("POST", `/proxies/${encodeURIComponent(name)}`, { enabled });
  }

  addToxic(proxy: string, toxic: Toxic): Promise<ProxyInfo["toxics"][number]> {
    return this.call("POST", `/proxies/${encodeURIComponent(proxy)}/toxics`, {
      stream: "downstream",
      toxicity: 1,
      name: `${toxic.type}_${toxic.stream ?? "downstream"}`,
      ...toxic,
    });
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call(
      "DELETE",
      `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`,
    );
  }

  /** Enables every proxy and removes every toxic. */
  async reset(): Promise<void> {
    await this.call("POST", "/reset");
  }
}

export interface RunningToxiproxy {
  client: ToxiproxyClient;
  process: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Starts a toxiproxy server on 127.0.0.1 (API on a free port) and waits until it answers. */
export async function startToxiproxy(binary = ensureToxiproxy()): Promise<RunningToxiproxy> {
  const port = await freePort();
  const p = track(
    spawn(binary, ["-host", "127.0.0.1", "-port", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, LOG_LEVEL: "warn" },
    }),
  );
  let err = "";
  p.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const client = new ToxiproxyClient(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`toxiproxy exited ${p.exitCode}: ${err}`);
    try {
      await client.version();
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        p.kill("SIGKILL");
        throw new Error(`toxiproxy did not start: ${(e as Error).message} ${err}`);
      }
      await new Promise(r => setTimeout(r, 100));
    }
  }
  return {
    client,
    process: p,
    port,
    async stop() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise(r => p.once("exit", r));
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

if (import.meta.main) {
  console.log(ensureToxiproxy());
}
