#!/usr/bin/env bash
# The generated-client round trip of issue 12: a Python client is generated from the served OpenAPI
# document with the pinned openapi-python-client (scripts/client_roundtrip.requirements.txt, into
# .venv-client/), then scripts/client_roundtrip.py lists synergies, creates an actor and a resource
# with a facilitator key and reads them back. The document's text/csv operations (the imports) are
# skipped by the generator, which says so.
#
#   scripts/client_roundtrip.sh        # needs `cargo build` first (BIN= to use another binary)
#
# Demo data in a throwaway SQLite database, a server on loopback, stopped at the end; non-zero on
# any failure (generation, a request, an answer the client cannot parse).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/symbiose}
PORT=${PORT:-18093}
VENV=$ROOT/.venv-client
PINNED=$(sed -n 's/^openapi-python-client==//p' scripts/client_roundtrip.requirements.txt)
[ -x "$BIN" ] || { echo "no binary at $BIN: run cargo build first" >&2; exit 2; }

if ! "$VENV/bin/openapi-python-client" --version 2>/dev/null | grep -q "$PINNED"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/client_roundtrip.requirements.txt
fi

WORK=$(mktemp -d)
# A copy: the shared target directory may be rebuilt by someone else meanwhile.
cp "$BIN" "$WORK/symbiose"
export SYMBIOSE__DATABASE__URL=$WORK/client.db
export SYMBIOSE__SERVER__PORT=$PORT
export SYMBIOSE__LOG__FILTER=warn
export SYMBIOSE__WEBHOOKS__WORKER=false
"$WORK/symbiose" demo > "$WORK/demo.log"
KEY=$("$WORK/symbiose" keys create --role facilitator --name "client généré" 2>/dev/null)
"$WORK/symbiose" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$PORT/health/ready" > /dev/null && break
  sleep 1
done

curl -sf "http://127.0.0.1:$PORT/api/v1/openapi.json" -o "$WORK/openapi.json"
# No formatter hooks (ruff is not required).
printf 'post_hooks: []\n' > "$WORK/generator.yaml"
(cd "$WORK" && "$VENV/bin/openapi-python-client" generate --path openapi.json --meta none \
  --config generator.yaml --output-path symbiose_client > generate.log 2>&1) || {
  cat "$WORK/generate.log" >&2
  exit 1
}
grep -i "warning" -A2 "$WORK/generate.log" | grep -v "^--$" || true

BASE_URL="http://127.0.0.1:$PORT" KEY="$KEY" PYTHONPATH="$WORK" \
  "$VENV/bin/python" scripts/client_roundtrip.py
STATUS=$?
if grep -E "panicked" "$WORK/server.log" > /dev/null; then
  echo "server panics:" >&2
  grep -E "panicked" "$WORK/server.log" | head -20 >&2
  STATUS=1
fi
exit $STATUS
