#!/usr/bin/env bash
# README's first command: the standalone gateway on examples/ with its demo backends.
# RAUTA_WORKERS (default 1) sets the worker count; extra arguments go to `rauta serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/bootstrap.sh
node=node_modules/.bin/node
"$node" examples/demo-backend.ts &
backend=$!
trap 'kill "$backend" 2>/dev/null || true' EXIT
cat >&2 <<'TXT'

RAUTA standalone gateway on http://localhost:8080 (metrics on http://localhost:9090/metrics)
Try, in another terminal:
  curl -i localhost:8080/api/users        # routed to "api", X-Served-By: rauta, X-Demo-Request seen by the backend
  curl -i localhost:8080/old/users        # 301 → /api/users
  curl -i localhost:8080/v2/hello         # routed to "web" with the prefix rewritten to /hello
  curl -s localhost:8080/ | grep backend  # 80% web / 20% api
  curl -s localhost:9090/metrics | grep rauta_requests_total
gRPC (GRPCRoute, port 8081) and TLS passthrough (TLSRoute, port 8443), examples/streams.yaml:
  grpcurl -plaintext -proto examples/grpc/greeter.proto -d '{"name":"you"}' localhost:8081 demo.Greeter/SayHello
  openssl s_client -connect localhost:8443 -servername echo.tls.localhost -CAfile examples/tls/demo.crt -quiet
Edit examples/*.yaml while it runs: changes are hot-reloaded (a broken edit is reported, and the last good config keeps serving).

TXT
"$node" proxy/bin/rauta.ts serve -f examples/ --workers "${RAUTA_WORKERS:-1}" "$@"
