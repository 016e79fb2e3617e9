#!/usr/bin/env bash
# Installs the project's npm dependencies (including its own Node 26) when they are missing or
# stale. The machine's Node only bootstraps npm; everything after runs on node_modules/.bin/node.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.rauta-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
version=$(npm exec --offline -- node --version)
case "$version" in
  v26.*) ;;
  *) echo "bootstrap: expected the project's Node 26, got $version" >&2; exit 1 ;;
esac
# The built-in plugins (AssemblyScript, plugins-sdk/builtins/dist): the proxy loads them by name.
# Rebuilt only when their sources change (a source-hash stamp per module).
node_modules/.bin/node hack/plugins/build.ts >&2
