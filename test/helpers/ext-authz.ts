// A real gRPC ext_authz server (hack/ext-authz: envoy.service.auth.v3.Authorization on the
// go-control-plane types), for the ExternalAuth protocol GRPC tests. Built once per source hash
// into ~/.cache/rauta, started per test on a free loopback port; every CheckRequest it gets is
// kept, as the JSON protojson writes, so a test can see what the gateway asked.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { moduleBinary } from "../../hack/cluster/build.ts";
import { freePort, portOpen } from "./net.ts";

const modDir = fileURLToPath(new URL("../../hack/ext-authz/", import.meta.url));

export function extAuthzBinary(): string {
  return moduleBinary(
    modDir,
    "ext-authz",
    "rauta-ext-authz",
    "gRPC ext_authz server (go-control-plane)",
  );
}

/** A CheckRequest as protojson writes it (camelCase fields; only what the tests read). */
export interface SeenCheck {
  attributes: {
    source?: { address?: { socketAddress?: { address?: string; portValue?: number } } };
    destination?: { address?: { socketAddress?: { address?: string; portValue?: number } } };
    request: {
      time?: string;
      http: {
        id?: string;
        method: string;
        headers?: Record<string, string>;
        path: string;
        host: string;
        scheme: string;
        protocol?: string;
        size?: string;
        body?: string;
        rawBody?: string;
      };
    };
  };
}

export interface ExtAuthz {
  port: number;
  checks: SeenCheck[];
  stop(): Promise<void>;
}

export async function startExtAuthz(): Promise<ExtAuthz> {
  const port = await freePort();
  const p = spawn(extAuthzBinary(), ["-listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const checks: SeenCheck[] = [];
  let partial = "";
  let log = "";
  p.stdout.on("data", (c: Buffer) => {
    const lines = (partial + c.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) if (line.trim() !== "") checks.push(JSON.parse(line) as SeenCheck);
  });
  p.stderr.on("data", (c: Buffer) => (log += c.toString()));
  await portOpen(port, {
    timeoutMs: 20_000,
    what: "ext-authz",
    gone: () => (p.exitCode !== null ? `exit ${p.exitCode}: ${log}` : null),
  });
  return {
    port,
    checks,
    stop: () =>
      new Promise<void>(resolve => {
        if (p.exitCode !== null) return resolve();
        p.once("exit", () => resolve());
        p.kill("SIGKILL");
      }),
  };
}
