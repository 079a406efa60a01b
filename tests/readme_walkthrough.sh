#!/usr/bin/env bash
# Runs the README's walk-through (the ```sh blocks between <!-- walkthrough --> and
# <!-- /walkthrough -->) as written, against the demo served by the binary `cargo test` built, on a
# throwaway SQLite database and a free port. Any command that fails — an HTTP error (the README's
# `api` is `curl --fail-with-body`), a missing file, an id that cannot be read — fails this script.
#
#   bash tests/readme_walkthrough.sh        (after `cargo test` or `cargo build`)
#
# The binary: $SYMBIOSE_BIN, else $CARGO_TARGET_DIR/debug/symbiose, else target/debug/symbiose.
set -euo pipefail
shopt -s inherit_errexit

root=$(cd "$(dirname "$0")/.." && pwd)
built=${SYMBIOSE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/symbiose}
[ -x "$built" ] || { echo "walkthrough: no binary at $built (run cargo build first)" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() {
  status=$?
  if [ "$status" -ne 0 ] && [ -f "$work/answers.log" ]; then
    echo "walkthrough: failed; the last answers:" >&2
    tail -n 5 "$work/answers.log" >&2
  fi
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# A private copy: a build running meanwhile may replace the one in target/.
bin=$work/symbiose
cp "$built" "$bin"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SYMBIOSE_CONFIG_DIR=$root/config
export SYMBIOSE__DATABASE__URL=$work/walkthrough.db
export SYMBIOSE__SERVER__PORT=$port
export SYMBIOSE__REFERENCE__DIR=$root/../shared/reference
export SYMBIOSE__LOG__FILTER=warn
unset SYMBIOSE_ENV

"$bin" serve --demo >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "walkthrough: the server stopped" >&2; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null || { echo "walkthrough: server not ready" >&2; exit 1; }

# The README's blocks, with the demo's port.
script=$work/walkthrough.sh
awk '/<!-- walkthrough -->/ { on = 1; next } /<!-- \/walkthrough -->/ { on = 0 }
     on && /^```sh/ { code = 1; next } on && /^```/ { code = 0; next } on && code' "$root/README.md" \
  | sed "s|127.0.0.1:8080|127.0.0.1:$port|g" >"$script"
[ -s "$script" ] || { echo "walkthrough: no walk-through block found in README.md" >&2; exit 1; }
commands=$(grep -c '^api \|^[A-Z_]*=\$(api ' "$script" || true)

# `cargo run -q -- ARGS` in the README runs the binary already built, with the settings above.
cargo() {
  [ "${1-}" = run ] && [ "${2-}" = -q ] && [ "${3-}" = -- ] || { echo "walkthrough: unexpected: cargo $*" >&2; return 1; }
  shift 3
  "$bin" "$@"
}

# From a directory where `examples/` is the repository's and written files are thrown away.
ln -s "$root/examples" "$work/examples"
cd "$work"
PS4='+ README: '
set -x
# shellcheck source=/dev/null
source "$script" >"$work/answers.log"
set +x
echo "readme walk-through: ok ($commands api calls succeeded)"
