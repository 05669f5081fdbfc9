#!/usr/bin/env bash
# The Express interop suite, one command: starts a redis-server on a free
# loopback port, the Express app (express-session + connect-redis) and the
# Rust interop-server sharing it and one secret, runs the assertions in
# node/interop.test.js with real HTTP requests, and stops everything it
# started. Exit status: the suite's. Set K to change the concurrency count.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if ! command -v redis-server >/dev/null 2>&1 || [ ! -d node/node_modules/express-session ]; then
  bash "$here/ensure-deps.sh"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  local pid
  if [ -f "$work/extra.pids" ]; then
    while read -r pid; do pids+=("$pid"); done <"$work/extra.pids"
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== building interop-server"
(cd "$root" && cargo build -q -p session-sockets-express-interop --bin interop-server)
bin="${CARGO_TARGET_DIR:-$root/target}/debug/interop-server"

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

redis_ping() {
  # Plain RESP over bash's /dev/tcp: no redis-cli needed.
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local line=""
  read -r -t 1 line <&3 || true
  exec 3<&- 3>&-
  [[ "$line" == "+PONG"* ]]
}

# Waits until file $1 has a line matching $2 (10 s), or the process $3 died.
wait_for_line() {
  local i
  for i in $(seq 1 200); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "process exited at start:" >&2; cat "$1" >&2; return 1; }
    sleep 0.05
  done
  echo "timed out waiting for '$2':" >&2; cat "$1" >&2; return 1
}

echo "== starting redis-server"
redis_port=""
for attempt in 1 2 3; do
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
  pid=$!
  for i in $(seq 1 100); do
    if redis_ping "$port"; then redis_port="$port"; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -n "$redis_port" ]; then pids+=("$pid"); break; fi
  kill "$pid" 2>/dev/null || true
done
[ -n "$redis_port" ] || { echo "could not start redis-server:" >&2; cat "$work/redis.log" >&2; exit 1; }
redis_url="redis://127.0.0.1:$redis_port/"
secret="interop-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

echo "== starting the Express app"
REDIS_URL="$redis_url" SECRET="$secret" PORT=0 node node/app.js >"$work/express.log" 2>&1 &
pids+=("$!")
wait_for_line "$work/express.log" "express listening on" "$!"
express_url="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/express.log" | head -1)"

echo "== starting interop-server"
INTEROP_REDIS_URL="$redis_url" INTEROP_SECRET="$secret" INTEROP_PORT=0 \
  INTEROP_ORIGIN="$express_url" "$bin" >"$work/rust.log" 2>&1 &
pids+=("$!")
wait_for_line "$work/rust.log" "interop-server listening on" "$!"
rust_url="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/rust.log" | head -1)"

echo "== interop assertions (redis $redis_url, express $express_url, rust $rust_url)"
status=0
EXPRESS_URL="$express_url" RUST_URL="$rust_url" REDIS_URL="$redis_url" K="${K:-20}" \
  REDIS_PORT="$redis_port" REDIS_DIR="$work" EXTRA_PIDS="$work/extra.pids" \
  node node/interop.test.js || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- express log"; cat "$work/express.log"
  echo "--- interop-server log"; cat "$work/rust.log"
fi
exit "$status"
