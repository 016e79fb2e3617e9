#!/usr/bin/env bash
# README's first command: the standalone gateway on examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/bootstrap.sh
exec npx --offline rauta compile -f examples/ "$@"
