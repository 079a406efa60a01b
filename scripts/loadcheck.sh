#!/usr/bin/env bash
# The issue-5 load check: 100,000 mixed reads/writes from 32 clients against a release server on the demo
# data, on SQLite (default) or PostgreSQL (pass a postgres:// URL). Needs `cargo build --release` first.
#   scripts/loadcheck.sh                                   # SQLite, fresh file in a temp dir
#   scripts/loadcheck.sh 'postgres://postgres@127.0.0.1:5432/symbiose_load?sslmode=disable'
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/symbiose
REQUESTS=${REQUESTS:-100000}
CONCURRENCY=${CONCURRENCY:-32}
PORT=${PORT:-18080}
WORK=$(mktemp -d)
export SYMBIOSE__DATABASE__URL=${1:-$WORK/load.db}
export SYMBIOSE__SERVER__PORT=$PORT
export SYMBIOSE__LOG__FILTER=warn
# One key drives all 32 clients: lift its rate limit for the measurement.
export SYMBIOSE__AUTH__RATE_LIMIT_PER_SECOND=1000000
export SYMBIOSE__AUTH__RATE_LIMIT_BURST=1000000
$BIN demo
KEY=$($BIN keys create --role facilitator --name loadcheck 2>/dev/null)
$BIN serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 1; done
/usr/bin/time -v $BIN loadcheck --mixed --url "http://127.0.0.1:$PORT" --requests "$REQUESTS" \
  --concurrency "$CONCURRENCY" --key "$KEY" 2> "$WORK/time.txt"
grep -E "Maximum resident|Elapsed" "$WORK/time.txt" | sed 's/^/client: /'
echo "server peak RSS: $(grep VmHWM /proc/$SERVER/status)"
grep -ciE "panic|error" "$WORK/server.log" | sed 's/^/server log lines with error or panic: /' || true
grep -E "ERROR" "$WORK/server.log" | sed -E 's/^.*(ERROR)/\1/' | sort | uniq -c | sort -rn | head -5 || true
