#!/usr/bin/env bash
# The scale curves of BENCHMARKS.md, one command: how cost grows with the
# work, each curve from one run of this script.
#
#   bash benches/scale.sh              # every curve, the sizes of BENCHMARKS.md (~15 min)
#   SMOKE=1 bash benches/scale.sh      # every runner once, tiny counts (CI, seconds)
#   CURVES="hold conns" bash benches/scale.sh    # some of them
#
# Curves (CURVES, default all): 
#   hold    RSS per idle socket at HOLDS sockets (default 1000 10000 18000),
#           one session for all, then a session each; a fresh chat per count;
#           past ~28,000 sockets the client uses several loopback source
#           addresses (127.0.0.1-127.0.0.N). Each socket is a descriptor in
#           the server: the count is bounded by `ulimit -n`, which needs
#           CAP_SYS_RESOURCE to go past the hard limit (20,000 on the
#           project's machines, where it is dropped), e.g. HOLDS=50000 as
#           root with it
#   conns   connections/s and server CPU per connection, websocket, at
#           CONCS concurrent (default 1 50 200 1000), MemoryStore and RedisStore
#   store   MemoryStore bytes per session at STORE sessions (default 10000,100000,1000000)
#   fanout  one logout to FANOUT sockets of one session (default 1000,10000)
#   stream  STREAM_RATES changes/s (default 1000,5000) on STREAM_SESSIONS
#           followed sessions (default 10000), RedisStore
#   ticks   CPU per second of a process following TICKS idle sessions
#           (default 10000,100000,1000000)
#   leave   LEAVE sockets of one session leaving (default 10000,50000,100000)
# The chat is pinned to CPU 0, the load (and redis-server) to CPU 1.
# Loopback only; every run is bounded in count and time. Needs redis-server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
smoke="${SMOKE:-0}"
if [ "$smoke" = 1 ]; then
  holds="${HOLDS:-200}"; concs="${CONCS:-1 50}"; conn_count="${CONN_COUNT:-200}"
  store="${STORE:-2000}"; fanout="${FANOUT:-100}"; rounds=1
  stream_sessions="${STREAM_SESSIONS:-100}"; stream_rates="${STREAM_RATES:-200}"; stream_secs=2
  ticks="${TICKS:-2000}"; leave="${LEAVE:-2000}"
else
  holds="${HOLDS:-1000 10000 18000}"; concs="${CONCS:-1 50 200 1000}"; conn_count="${CONN_COUNT:-3000}"
  store="${STORE:-10000,100000,1000000}"; fanout="${FANOUT:-1000,10000}"; rounds="${ROUNDS:-3}"
  stream_sessions="${STREAM_SESSIONS:-10000}"; stream_rates="${STREAM_RATES:-1000,5000}"; stream_secs="${STREAM_SECS:-10}"
  ticks="${TICKS:-10000,100000,1000000}"; leave="${LEAVE:-10000,50000,100000}"
fi
curves="${CURVES:-hold conns store fanout stream ticks leave}"
case "$holds $concs $conn_count $rounds $stream_sessions $stream_secs" in
  *[!0-9\ ]*) echo "HOLDS, CONCS, CONN_COUNT, ROUNDS, STREAM_SESSIONS, STREAM_SECS must be whole numbers" >&2; exit 2 ;;
esac
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
max_hold=0
for n in $holds; do [ "$n" -gt "$max_hold" ] && max_hold=$n; done
for n in ${fanout//,/ } $stream_sessions; do [ "$n" -gt "$max_hold" ] && max_hold=$n; done
# Every socket is a descriptor on each side.
ulimit -n "$(( max_hold * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$(( max_hold + 1024 ))" ]; then
  echo "cannot raise the descriptor limit to $(( max_hold + 1024 )) (ulimit -n is $(ulimit -n), hard limit $(ulimit -Hn)); lower HOLDS, or raise the hard limit (needs CAP_SYS_RESOURCE)" >&2
  exit 1
fi
(cd "$root" && cargo build --release -q -p session-sockets-chat --bin chat \
  -p session-sockets-benches --bin loadgen --bin scale)
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
chat="$target/release/chat"
loadgen="$target/release/loadgen"
scale="$target/release/scale"

# pin, free_port, wait_for, cpu_ms, rss_kb; the temporary $work and $pids.
# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
secret="scale-bench-secret"
redis=""
start_redis() {
  [ -n "$redis" ] && return
  local rport; rport="$(free_port)"
  pin 1 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_for "$work/redis.log" "Ready to accept connections" 10
  redis="redis://127.0.0.1:$rport/"
}
starts=0
start_chat() { # extra args...
  local port log; port="$(free_port)"
  # A log of its own: the last one already says "listening".
  starts=$(( starts + 1 ))
  log="$work/chat.$starts.log"
  pin 0 "$chat" --port "$port" --secret "$secret" --capacity 2000000 "$@" >"$log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  srv_url="http://127.0.0.1:$port"
  wait_for "$log" "listening" 20
}
stop_chat() {
  kill "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
}

for curve in $curves; do
  case "$curve" in
    hold)
      echo
      echo "RSS per idle socket (a fresh chat, MemoryStore, per count; (RSS with all open - RSS before) / count)"
      echo
      echo "| sockets | one session for all | a session each |"
      echo "|---|---|---|"
      for n in $holds; do
        row="| $n |"
        for scenario in shared each; do
          start_chat
          (pin 1 "$loadgen" --url "$srv_url" connect --count 300 --concurrency 10 >/dev/null)
          sleep 1
          rss0="$(rss_kb "$srv_pid")"
          rm -f "$work/ready"
          flag=()
          [ "$scenario" = each ] && flag=(--session-each)
          sources=$(( n / 20000 + 1 ))
          # The smoke takes the several-addresses path too.
          [ "$smoke" = 1 ] && sources=2
          pin 1 "$loadgen" --url "$srv_url" hold --count "$n" --hold-secs 600 --sources "$sources" \
            --ready-file "$work/ready" "${flag[@]}" --timeout 900 >"$work/hold.out" 2>&1 &
          lg=$!
          for _ in $(seq 1 6000); do [ -s "$work/ready" ] && break; kill -0 "$lg" 2>/dev/null || break; sleep 0.1; done
          sleep 2
          rss1="$(rss_kb "$srv_pid")"
          open="$(cat "$work/ready" 2>/dev/null || echo 0)"
          kill "$lg" 2>/dev/null || true
          wait "$lg" 2>/dev/null || true
          stop_chat
          if [ "$open" -ne "$n" ]; then
            echo "only $open of $n sockets opened:" >&2
            cat "$work/hold.out" >&2
            exit 1
          fi
          row="$row $(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN { printf "%.1f KiB", (b - a) / n }') |"
        done
        echo "$row"
      done
      ;;
    conns)
      start_redis
      echo
      echo "websocket connections through the handshake, $conn_count per row; server CPU per connection from /proc schedstat"
      echo
      echo "| store | concurrent | conn/s | p50 ms | p99 ms | server CPU us/conn | failed |"
      echo "|---|---|---|---|---|---|---|"
      for st in memory redis; do
        if [ "$st" = redis ]; then start_chat --redis "$redis"; else start_chat; fi
        (pin 1 "$loadgen" --url "$srv_url" connect --count 300 --concurrency 10 >/dev/null)
        for c in $concs; do
          before="$(cpu_ms "$srv_pid")"
          out="$(pin 1 "$loadgen" --url "$srv_url" connect --count "$conn_count" --concurrency "$c" --timeout 300)"
          after="$(cpu_ms "$srv_pid")"
          echo "$out" | node -e '
            let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{
              const j=JSON.parse(s); const [st,c,b,a]=process.argv.slice(1);
              const cpu=(Number(a)-Number(b))*1000/Math.max(j.ok,1);
              console.log(`| ${st} | ${c} | ${j.per_second.toFixed(0)} | ${j.p50_ms.toFixed(2)} | ${j.p99_ms.toFixed(2)} | ${cpu.toFixed(0)} | ${j.failed} |`);
            })' "$st" "$c" "$before" "$after"
        done
        stop_chat
      done
      ;;
    store)
      echo
      (pin 1 "$scale" store --sessions "$store")
      ;;
    fanout)
      echo
      (BENCH_SERVER_CPU=0 pin 1 "$scale" fanout --sockets "$fanout" --rounds "$rounds")
      ;;
    stream)
      echo
      (BENCH_SERVER_CPU=0 pin 1 "$scale" stream --sessions "$stream_sessions" --rates "$stream_rates" --secs "$stream_secs")
      ;;
    ticks)
      echo
      (pin 0 "$scale" ticks --sessions "$ticks")
      ;;
    leave)
      echo
      (pin 0 "$scale" leave --followers "$leave")
      ;;
    *) echo "unknown curve $curve (hold conns store fanout stream ticks leave)" >&2; exit 2 ;;
  esac
done
