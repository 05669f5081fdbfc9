#!/usr/bin/env bash
# End-to-end: socket.io connections per second with a Redis-backed session,
# the Rust chat example (session-sockets + socketioxide + RedisStore) vs a
# Node socket.io 4 server using express-session + connect-redis
# (`io.engine.use`), same machine, same redis-server, same load generator
# (load.js: websocket transport, the session cookie in the upgrade request).
# Loopback only; every run is bounded in count and time.
#
#   bash benches/node/e2e/e2e.sh [COUNT] [CONCURRENT_COUNT]
#
# E2E_CLIENT=socket.io uses socket.io-client instead of load.js's own
# lighter Engine.IO client (see load.js).
# Needs redis-server, Node 20+ and cargo. Goal: Rust >= 5x.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
count="${1:-300}"
ccount="${2:-1000}"
case "$count$ccount" in *[!0-9]*) echo "usage: e2e.sh [COUNT] [CONCURRENT_COUNT]" >&2; exit 2 ;; esac
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
command -v node >/dev/null || { echo "node not found: install Node 20 or later" >&2; exit 1; }
if [ ! -d "$here/../node_modules/socket.io" ]; then
  (cd "$here/.." && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$root" && cargo build --release -q -p session-sockets-chat --bin chat)
chat_bin="$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/release/chat"

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # file pattern seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2'; log:" >&2
  cat "$1" >&2
  return 1
}

secret="e2e-bench-secret"
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections" 10
redis="redis://127.0.0.1:$rport/"

cport="$(free_port)"
"$chat_bin" --port "$cport" --secret "$secret" --redis "$redis" >"$work/chat.log" 2>&1 &
chat_pid=$!
pids+=($chat_pid)
wait_for "$work/chat.log" "listening" 20

nport="$(free_port)"
REDIS_URL="$redis" SECRET="$secret" PORT="$nport" node "$here/node_server.js" >"$work/node.log" 2>&1 &
node_pid=$!
pids+=($node_pid)
wait_for "$work/node.log" "listening" 20

# CPU time (user + system, clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
run() { # label url concurrency count server-pid
  local out before after
  before="$(cpu_ticks "$5")"
  out="$(node "$here/load.js" --url "$2" --concurrency "$3" --count "$4" --timeout 60 --client "${E2E_CLIENT:-raw}")"
  after="$(cpu_ticks "$5")"
  echo "$1 $out $(( (after - before) * 1000 / hz ))"
}
results=()
results+=("$(run rust_seq "http://127.0.0.1:$cport" 1 "$count" "$chat_pid")")
results+=("$(run node_seq "http://127.0.0.1:$nport" 1 "$count" "$node_pid")")
results+=("$(run rust_c50 "http://127.0.0.1:$cport" 50 "$ccount" "$chat_pid")")
results+=("$(run node_c50 "http://127.0.0.1:$nport" 50 "$ccount" "$node_pid")")

printf '%s\n' "${results[@]}" | node -e '
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
const r = {};
for (const l of lines) {
  const [k, json, cpu] = [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1, l.lastIndexOf(" ")), l.slice(l.lastIndexOf(" ") + 1)];
  r[k] = JSON.parse(json);
  r[k].cpu_us = Number(cpu) * 1000 / Math.max(r[k].ok, 1);
}
const row = (k, what) => console.log(k.padEnd(9) + String(r[k].per_second.toFixed(1)).padStart(10) + " conn/s  " +
  String(r[k].cpu_us.toFixed(0)).padStart(6) + " us server CPU/conn  " +
  r[k].ok + " ok, " + r[k].failed + " failed in " + r[k].seconds + " s  " + what);
row("rust_seq", "Rust chat + RedisStore, 1 at a time");
row("node_seq", "Node socket.io 4 + express-session + connect-redis, 1 at a time");
row("rust_c50", "Rust, 50 concurrent");
row("node_c50", "Node, 50 concurrent");
const a = r.rust_seq.per_second / r.node_seq.per_second, b = r.rust_c50.per_second / r.node_c50.per_second;
console.log("ratio Rust/Node: sequential " + a.toFixed(1) + "x, 50 concurrent " + b.toFixed(1) + "x (goal >= 5x): " + (Math.min(a, b) >= 5 ? "met" : "not met"));
console.log("server CPU per connection, Node/Rust: sequential " + (r.node_seq.cpu_us / r.rust_seq.cpu_us).toFixed(1) + "x, 50 concurrent " + (r.node_c50.cpu_us / r.rust_c50.cpu_us).toFixed(1) + "x");
'
