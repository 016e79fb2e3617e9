// oauth2-proxy, the auth service most ingress-nginx users put behind auth-url, built from its Go
// module once (about a minute) and kept under ~/.cache/rauta by version.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot } from "../../../hack/cluster/config.ts";

export const OAUTH2_PROXY_VERSION = "v7.15.6";

export function oauth2ProxyBinary(): string {
  const dir = join(cacheRoot, `oauth2-proxy-${OAUTH2_PROXY_VERSION}`);
  const bin = join(dir, "oauth2-proxy");
  if (!existsSync(bin))
    execFileSync(
      "go",
      ["install", `github.com/oauth2-proxy/oauth2-proxy/v7@${OAUTH2_PROXY_VERSION}`],
      { env: { ...process.env, GOBIN: dir, GOFLAGS: "-mod=mod" }, stdio: "inherit" },
    );
  return bin;
}

/** An htpasswd line in the {SHA} form oauth2-proxy reads. */
export function htpasswdLine(user: string, password: string): string {
  return `${user}:{SHA}${createHash("sha1").update(password).digest("base64")}`;
}
