#!/usr/bin/env bash
# End-to-end comparison, one command: what a whole socket.io connection
# costs with sessions, next to socketioxide alone and to Node.
#
#   bash benches/e2e/compare.sh            # COUNT=3000 HOLD=10000 ROUNDS=5 by default
#   COUNT=1000 HOLD=2000 ROUNDS=1 bash benches/e2e/compare.sh
#
# Servers (each alone on the machine while it is measured, pinned to CPU 0;
# the load generator and redis-server share CPU 1):
#   bare     the chat with --no-sessions: socketioxide with no session middleware
#            (the same routes, room and handlers; its logins go to a MemoryStore)
#   bare_redis  the same with --redis: socketioxide's Redis adapter, logins in
#            Redis; the baseline of the RedisStore server
#   memory   the chat: session middleware + MemoryStore
#   redis    the chat --redis: session middleware + RedisStore
#   node     Node socket.io 4 + express-session 1.19 + connect-redis 9
#            (benches/node/e2e/node_server.js, io.engine.use(session))
#   memory_metrics  the chat with --metrics (a Prometheus recorder; logs at info)
#   memory_debug    the same with RUST_LOG=debug: every operation span recorded
# SERVERS picks the servers (default: bare bare_redis memory redis node), e.g.
#   SERVERS="memory memory_metrics memory_debug" HOLD=0 bash benches/e2e/compare.sh
# for what observing the sessions costs (HOLD=0 skips the idle-socket runs).
# Before/after in one run: BEFORE=path/to/an/older/chat binary, and any chat
# server name with `_before` appended runs that binary the same way, e.g.
#   BEFORE=/tmp/base/release/chat SERVERS="bare bare_before memory memory_before node" bash benches/e2e/compare.sh
# Load: benches/src/bin/loadgen.rs (Rust, one thread) logs in once, then opens
# connections carrying the cookie through the Engine.IO/Socket.IO handshake:
# COUNT one at a time, at 50 and at 200 concurrent (websocket), and COUNT/3 one
# at a time polling-first (then upgraded). These runs go round ROUNDS times,
# the servers taking turns within each round in a rotating order (a fresh
# process each time); each figure is the median over the rounds, and each
# ratio the median of the ratios within a round: one busy moment of the
# machine moves one round, not the result. Then each server holds HOLD idle
# websockets twice: all of one session (one login), then each with a
# session of its own (a login per socket).
# Per server: connections/s, p50/p99 connect latency, server CPU per
# connection (the server's thread run time from /proc over the run, divided
# by the connections) and RSS per idle connected socket ((RSS with HOLD
# sockets open - RSS before) / HOLD). Loopback only; every run is bounded
# in count and time. With the redis server, each round also runs
# benches/src/bin/redis_get: what one GET round trip costs the process the
# way the handshake pays it, the yardstick of the RedisStore row.
# Needs redis-server, Node 20+ and cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
count="${COUNT:-3000}"
hold="${HOLD:-10000}"
rounds="${ROUNDS:-5}"
case "$count$hold$rounds" in *[!0-9]*) echo "COUNT, HOLD and ROUNDS must be whole numbers" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
command -v node >/dev/null || { echo "node not found: install Node 20 or later" >&2; exit 1; }
if [ ! -d "$root/benches/node/node_modules/socket.io" ]; then
  (cd "$root/benches/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Every held socket is a descriptor on each side.
ulimit -n "$(( hold * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$(( hold + 1024 ))" ]; then
  echo "cannot raise the descriptor limit to hold $hold sockets (ulimit -n is $(ulimit -n)); lower HOLD" >&2
  exit 1
fi
(cd "$root" && cargo build --release -q -p session-sockets-chat --bin chat -p session-sockets-benches --bin loadgen --bin redis_get)
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
chat="$target/release/chat"
loadgen="$target/release/loadgen"
redis_get="$target/release/redis_get"

# pin, free_port, wait_for, cpu_ms, rss_kb; the temporary $work and $pids.
# shellcheck source=benches/lib.sh
source "$here/../lib.sh"

rport="$(free_port)"
pin 1 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections" 10
redis="redis://127.0.0.1:$rport/"
secret="e2e-bench-secret"

start_server() { # name -> sets srv_pid, srv_url
  local port; port="$(free_port)"
  local chat="$chat" name="$1"
  # The last run of this server left "listening" in its log.
  rm -f "$work/$1.log"
  case "$name" in
    *_before)
      chat="${BEFORE:?set BEFORE=path/to/the baseline chat binary for the *_before servers}"
      [ -x "$chat" ] || { echo "BEFORE=$chat is not an executable" >&2; exit 2; }
      name="${name%_before}" ;;
  esac
  case "$name" in
    bare) pin 0 "$chat" --port "$port" --secret "$secret" --no-sessions >"$work/$1.log" 2>&1 & ;;
    bare_redis) pin 0 "$chat" --port "$port" --secret "$secret" --no-sessions --redis "$redis" >"$work/$1.log" 2>&1 & ;;
    memory) pin 0 "$chat" --port "$port" --secret "$secret" >"$work/$1.log" 2>&1 & ;;
    redis) pin 0 "$chat" --port "$port" --secret "$secret" --redis "$redis" >"$work/$1.log" 2>&1 & ;;
    node) REDIS_URL="$redis" SECRET="$secret" PORT="$port" pin 0 node "$root/benches/node/e2e/node_server.js" >"$work/$1.log" 2>&1 & ;;
    memory_metrics) pin 0 "$chat" --port "$port" --secret "$secret" --metrics 127.0.0.1:0 >"$work/$1.log" 2>&1 & ;;
    memory_debug) RUST_LOG=debug pin 0 "$chat" --port "$port" --secret "$secret" --metrics 127.0.0.1:0 >"$work/$1.log" 2>&1 & ;;
    *) echo "unknown server $1" >&2; exit 2 ;;
  esac
  srv_pid=$!
  pids+=("$srv_pid")
  srv_url="http://127.0.0.1:$port"
  wait_for "$work/$1.log" "listening" 20
}

stop_server() {
  kill "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
}

connects() { # name round
  local out before after
  start_server "$1"
  (pin 1 "$loadgen" --url "$srv_url" connect --count 300 --concurrency 10 >/dev/null) # warm-up
  for c in 1 50 200; do
    before="$(cpu_ms "$srv_pid")"
    out="$(pin 1 "$loadgen" --url "$srv_url" connect --count "$count" --concurrency "$c" --timeout 120)"
    after="$(cpu_ms "$srv_pid")"
    echo "$1 ws c$c $out $before $after" >>"$work/results"
  done
  before="$(cpu_ms "$srv_pid")"
  out="$(pin 1 "$loadgen" --url "$srv_url" connect --count "$(( count / 3 ))" --transport polling --timeout 120)"
  after="$(cpu_ms "$srv_pid")"
  echo "$1 polling c1 $out $before $after" >>"$work/results"
  stop_server
}

holds() { # name
  local scenario lg rss0 rss1
  # A fresh server for each: memory freed by one would be reused by the
  # next and hide its cost.
  for scenario in shared each; do
    start_server "$1"
    (pin 1 "$loadgen" --url "$srv_url" connect --count 300 --concurrency 10 >/dev/null) # warm-up
    sleep 1
    rss0="$(rss_kb "$srv_pid")"
    rm -f "$work/ready"
    local flag=()
    [ "$scenario" = each ] && flag=(--session-each)
    pin 1 "$loadgen" --url "$srv_url" hold --count "$hold" --hold-secs 600 --ready-file "$work/ready" "${flag[@]}" --timeout 900 >"$work/hold.out" 2>&1 &
    lg=$!
    for _ in $(seq 1 1800); do [ -s "$work/ready" ] && break; sleep 0.1; done
    sleep 2 # let the server settle with every socket open
    rss1="$(rss_kb "$srv_pid")"
    echo "$1 hold_$scenario $(cat "$work/ready" 2>/dev/null || echo 0) $rss0 $rss1" >>"$work/results"
    kill "$lg" 2>/dev/null || true
    wait "$lg" 2>/dev/null || true
    stop_server
  done
}

read -r -a servers <<<"${SERVERS:-bare bare_redis memory redis node}"
for round in $(seq 1 "$rounds"); do
  # Each round starts one server later: on a shared host, a server always
  # measured in the same slot of the round carries that slot's luck (seen:
  # +19 % for one server that 7 interleaved rounds put at +6 %).
  for i in "${!servers[@]}"; do
    s="${servers[$(( (i + round - 1) % ${#servers[@]} ))]}"
    echo "== round $round/$rounds: $s" >&2
    connects "$s" "$round"
  done
  # The yardstick of the RedisStore row, in the same round: one GET as the
  # handshake pays it (the process idle before it, Redis woken on the other
  # CPU, the chat's runtime), from redis_get with a redis-server of its own.
  if [[ " ${servers[*]} " == *" redis "* ]]; then
    echo "== round $round/$rounds: redis_get" >&2
    rtt="$(REDIS_CPU=1 pin 0 "$redis_get" | sed -n 's/.*multi-thread runtime, 1 worker | 1 | \([0-9.-]*\) .*/\1/p')"
    echo "redis_get rtt c1 $rtt" >>"$work/results"
  fi
done
if [ "$hold" -gt 0 ]; then
  for s in "${servers[@]}"; do
    echo "== $s: $hold idle sockets, one session, then a session each" >&2
    holds "$s"
  done
fi

node - "$work/results" "$count" "$hold" "$rounds" <<'EOF'
const [file, count, hold, rounds] = process.argv.slice(2);
const rows = require("fs").readFileSync(file, "utf8").trim().split("\n");
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const runs_of = {};
const r = {};
for (const line of rows) {
  const parts = line.split(" ");
  const [name, kind] = parts;
  r[name] ??= {};
  if (kind === "rtt") {
    (r[name].rtt ??= []).push(Number(parts[3]));
  } else if (kind.startsWith("hold_")) {
    const [, , open, rss0, rss1] = parts;
    r[name][kind] = { open: Number(open), bytes: (Number(rss1) - Number(rss0)) * 1024 / Math.max(Number(open), 1) };
  } else {
    const conc = parts[2];
    const json = JSON.parse(parts[3]);
    const cpu = (Number(parts[5]) - Number(parts[4])) * 1000 / Math.max(json.ok, 1);
    ((runs_of[name] ??= {})[`${kind}_${conc}`] ??= []).push({ ...json, cpu_us: cpu });
  }
}
// Each figure: the median over the rounds (failures: the total).
for (const [name, byRun] of Object.entries(runs_of)) {
  for (const [k, list] of Object.entries(byRun)) {
    const m = (f) => median(list.map((x) => x[f]));
    r[name][k] = {
      per_second: m("per_second"), p50_ms: m("p50_ms"), p99_ms: m("p99_ms"), cpu_us: m("cpu_us"),
      failed: list.reduce((a, x) => a + (x.failed || 0), 0),
      spread: [Math.min(...list.map((x) => x.cpu_us)), Math.max(...list.map((x) => x.cpu_us))],
    };
  }
}
const base = ["bare", "bare_redis", "memory", "redis", "node", "memory_metrics", "memory_debug"];
const names = base.flatMap((n) => [`${n}_before`, n]).filter((n) => r[n]);
const label = { bare: "bare socketioxide", bare_redis: "bare, Redis adapter", memory: "chat, MemoryStore", redis: "chat, RedisStore", node: "Node + express-session + connect-redis", memory_metrics: "chat, MemoryStore, --metrics", memory_debug: "chat, MemoryStore, --metrics, RUST_LOG=debug" };
for (const n of base) label[`${n}_before`] = `${label[n]} (before)`;
const has = (...ns) => ns.every((n) => runs_of[n]);
const runs = [["ws_c1", "websocket, 1 at a time"], ["ws_c50", "websocket, 50 concurrent"], ["ws_c200", "websocket, 200 concurrent"], ["polling_c1", "polling-first, 1 at a time"]];
const pad = (s, n) => String(s).padStart(n);
console.log(`\n${count} connections per run (polling: ${Math.floor(count / 3)}), median of ${rounds} round(s); ${hold} idle sockets held\n`);
console.log("| run | " + names.map((n) => label[n]).join(" | ") + " |");
console.log("|---|" + names.map(() => "---").join("|") + "|");
for (const [k, what] of runs) {
  console.log(`| ${what}: conn/s | ` + names.map((n) => r[n][k] ? r[n][k].per_second.toFixed(0) + (r[n][k].failed ? ` (${r[n][k].failed} failed)` : "") : "-").join(" | ") + " |");
  console.log(`| ${what}: p50 / p99 ms | ` + names.map((n) => r[n][k] ? `${r[n][k].p50_ms.toFixed(2)} / ${r[n][k].p99_ms.toFixed(2)}` : "-").join(" | ") + " |");
  console.log(`| ${what}: server CPU us/conn | ` + names.map((n) => r[n][k] ? r[n][k].cpu_us.toFixed(0) : "-").join(" | ") + " |");
}
for (const [k, what] of [["hold_shared", "one session for all"], ["hold_each", "a session each"]]) {
  console.log(`| RSS per idle socket, ${what} (${hold} held) | ` + names.map((n) => r[n][k] ? `${(r[n][k].bytes / 1024).toFixed(1)} KiB (${r[n][k].open} open)` : "-").join(" | ") + " |");
}
// A ratio of two servers: the median over the rounds of the ratio within
// each round, where both ran minutes apart at most, so that a drift of the
// host between rounds cancels out.
const ratio = (a, b, k, f) =>
  median(runs_of[a][k].map((x, i) => (runs_of[b][k][i][f] > 0 ? x[f] / runs_of[b][k][i][f] : NaN)));
console.log("\nratios (same run; each the median over the rounds of that round's ratio):");
for (const [k, what] of runs) {
  const over = (n, base) => {
    const pct = (ratio(n, base, k, "cpu_us") - 1) * 100;
    return (pct >= 0 ? "+" : "") + pct.toFixed(1);
  };
  if (has("memory", "bare", "redis", "bare_redis")) {
    console.log(`  ${what}: session overhead, server CPU/conn: memory over bare ${over("memory", "bare")}%, redis over bare_redis ${over("redis", "bare_redis")}% (goal <= 10%)`);
  }
  if (has("node", "redis")) {
    console.log(`  ${what}: Node / chat(redis) server CPU/conn: ${ratio("node", "redis", k, "cpu_us").toFixed(1)}x (goal >= 5x); conn/s chat(redis) / Node: ${ratio("redis", "node", k, "per_second").toFixed(2)}x (goal > 1)`);
  }
  if (has("memory", "memory_metrics", "memory_debug")) {
    console.log(`  ${what}: observing, server CPU/conn: --metrics over memory ${over("memory_metrics", "memory")}%, debug spans + metrics over memory ${over("memory_debug", "memory")}%`);
  }
}
if (r.redis_get && has("redis", "bare_redis")) {
  // Per round: the RedisStore row's extra CPU per connection, and the
  // round trip measured in that round.
  const extra = runs_of.redis.ws_c1.map((x, i) => x.cpu_us - runs_of.bare_redis.ws_c1[i].cpu_us);
  const rtt = r.redis_get.rtt;
  console.log(`  websocket, 1 at a time: RedisStore over bare_redis ${median(extra).toFixed(1)} us/conn (rounds ${extra.map((x) => x.toFixed(0)).join(", ")}); one GET round trip, idle before, Redis on the other CPU (redis_get) ${median(rtt).toFixed(1)} us (rounds ${rtt.map((x) => x.toFixed(1)).join(", ")}) (goal: within one round trip)`);
}
for (const n of base) {
  if (!has(n, `${n}_before`)) continue;
  const parts = runs.map(([k, what]) => `${what} ${((ratio(n, `${n}_before`, k, "cpu_us") - 1) * 100).toFixed(1)}%`);
  console.log(`  ${n} after over before, server CPU/conn (same run): ${parts.join(", ")}`);
}
for (const [k, what] of [["hold_shared", "one session for all"], ["hold_each", "a session each"]]) {
  for (const n of base) {
    const b = `${n}_before`;
    if (r[n] && r[b] && r[n][k] && r[b][k]) {
      console.log(`  RSS per idle socket, ${what}: ${n} ${(r[n][k].bytes - r[b][k].bytes).toFixed(0)} B after over before`);
    }
  }
  if (r.node && r.node[k]) {
    for (const n of ["memory", "redis"]) {
      if (r[n] && r[n][k]) console.log(`  RSS per idle socket, ${what}: ${n} ${(r[n][k].bytes - r.node[k].bytes).toFixed(0)} B over Node (goal <= 0)`);
    }
  }
  if (!has("memory", "bare", "redis", "bare_redis") || !r.memory[k]) continue;
  const extra = (n, base) => (r[n][k].bytes - r[base][k].bytes).toFixed(0);
  console.log(`  RSS per idle socket, ${what}: memory over bare ${extra("memory", "bare")} B, redis over bare_redis ${extra("redis", "bare_redis")} B (goal <= 1024 B)`);
}
console.log("  server CPU/conn spread over the rounds (min-max us): " + runs.map(([k]) => k + " " + names.map((n) => r[n][k] ? `${n} ${r[n][k].spread[0].toFixed(0)}-${r[n][k].spread[1].toFixed(0)}` : "").join(", ")).join("; "));
EOF
