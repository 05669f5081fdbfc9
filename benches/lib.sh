# Shell helpers of the bench runners (benches/e2e/compare.sh,
# benches/scale.sh): source it. Sets `work` (a temporary directory) and
# `pids` (processes to stop); both are cleaned up on exit.

# Runs a command pinned to one CPU, in place of the (sub)shell that calls it,
# so that `$!` is the command's own pid. Call it in a subshell or with `&`.
pin() { # cpu command...
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi
}
# A free loopback port.
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
# CPU time a process has used, in ms, at nanosecond resolution: the sum of
# its threads' run time (/proc/PID/task/*/schedstat), which clock-tick
# figures (/proc/PID/stat, 10 ms) are too coarse for.
cpu_ms() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.3f", s / 1e6 }'; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
