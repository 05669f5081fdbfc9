#!/usr/bin/env bash
# Real-client tests of the chat example against the release `chat` binary
# (and the real tower-sessions and actix-session apps whose sessions it shares):
# the vendored socket.io client against the lockfile; socket.io-client
# (polling and websocket) and the HTTP side (shared sessions, CSRF and origin
# checks, payload bounds, header timeout), once on the in-memory store and
# once on a private redis-server; a private 3+3 Redis Cluster (two chat
# nodes, Express on it, a primary killed); headless Chromium via playwright-core. Idempotent; installs what is missing on a fresh
# Debian: chromium, redis-server (and node/npm if absent) with apt-get, the
# pinned npm packages with `npm ci`. The browser test refreshes
# docs/chat.png (its bytes are the same on every run).
#
#   bash examples/chat/tests/run.sh
set -euo pipefail
chat_dir="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$chat_dir/../.." && pwd)"

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

(cd "$chat_dir" && npm ci --no-audit --no-fund --loglevel=error)
# The stock Express app of the live-sessions suite.
(cd "$root/examples/express-interop/node" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$root" && cargo build --release --bin chat --bin loadgen)
# The real tower-sessions and actix-session apps, in the debug build that
# `cargo test --workspace --all-features` already made (so only linked here).
(cd "$root" && cargo build --workspace --all-features --bin tower-sessions-app --bin actix-session-app)
bin="${CARGO_TARGET_DIR:-$root/target}/release/chat"
apps="${CARGO_TARGET_DIR:-$root/target}/debug"
export LOADGEN="${CARGO_TARGET_DIR:-$root/target}/release/loadgen"

status=0
echo "== vendored socket.io client (R33)"
(cd "$chat_dir" && node tests/vendor.test.js) || status=1

echo "== socket.io-client (polling, websocket), memory store"
(cd "$chat_dir" && node tests/client.test.js "$bin") || status=1

echo "== socket.io-client (polling, websocket), --redis"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
(cd "$chat_dir" && node tests/client.test.js "$bin" --redis "redis://127.0.0.1:$port/") || status=1
kill "$redis_pid" 2>/dev/null || true

echo "== HTTP routes and sockets on one session, memory store"
(cd "$chat_dir" && node tests/http.test.js "$bin") || status=1

echo "== HTTP routes and sockets on one session, Redis (with a store outage)"
(cd "$chat_dir" && node tests/http.test.js "$bin" --redis-server) || status=1

echo "== live sessions: two chat nodes + Express + redis-server with default settings"
(cd "$chat_dir" && node tests/live.test.js "$bin") || status=1

echo "== Redis Cluster: 3 primaries + 3 replicas, two chat nodes, Express on createCluster, a primary killed (R37)"
(cd "$chat_dir" && node tests/cluster.test.js "$bin") || status=1

echo "== Rust apps' sessions: tower-sessions (plain, signed, private) and actix-session (private, signed), two chat nodes, redis-server"
(cd "$chat_dir" && node tests/formats.test.js "$bin" "$apps/tower-sessions-app" "$apps/actix-session-app") || status=1

echo "== metrics: a scripted workload, every counter exact (--metrics, Redis)"
(cd "$chat_dir" && node tests/metrics.test.js "$bin") || status=1

echo "== a clean stop: SIGTERM during bursts of incr (R38, Redis)"
(cd "$chat_dir" && node tests/shutdown.test.js "$bin") || status=1

echo "== headless Chromium (playwright-core)"
(cd "$chat_dir" && node tests/browser.test.js "$bin" "$root/docs/chat.png") || status=1
exit $status
