// Flags `podman run` needs on hosts like this project's CI machines, harmless elsewhere: their
// hybrid cgroup layout makes podman's default runtime (crun) refuse to start ("cgroups in hybrid
// mode not supported"), so runc with the cgroupfs manager; and the process may not raise its
// resource limits, so the container's are set at or below the caller's instead of podman's
// defaults (RLIMIT_NOFILE 1048576).
import { spawnSync } from "node:child_process";

function limit(flag: string): number {
  const r = spawnSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

/** Global flags, before the subcommand. */
export const PODMAN_GLOBAL_ARGS = ["--runtime=runc", "--cgroup-manager=cgroupfs"];

/** Flags of `podman run`. */
export function podmanRunLimits(): string[] {
  const nofile = Math.min(limit("-n"), 65_536);
  return [`--ulimit=nofile=${nofile}:${nofile}`, "--ulimit=nproc=4096:4096"];
}
