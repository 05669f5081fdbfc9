#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target and runs each for SECONDS
# (default 60), starting from the committed seeds in fuzz/corpus/<target>.
# Fails on any crash, panic, timeout or out-of-memory. Idempotent: installs
# cargo-fuzz if missing; new corpus entries go to a scratch directory, so
# the committed seeds stay as they are.
#
#   bash fuzz/smoke.sh [SECONDS] [TARGET...]
#
# Uses the nightly toolchain when rustup has one, else the default toolchain
# with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags). The sanitizer is
# `none` by default (the targets are safe Rust; panics and failed
# assertions are the findings, and more runs fit in the time); set
# FUZZ_SANITIZER=address to run under AddressSanitizer (nightly).
# A crashing input is saved under fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-60}"
shift || true
case "$secs" in
  '' | *[!0-9]*)
    echo "usage: bash fuzz/smoke.sh [SECONDS] [TARGET...] (SECONDS must be a whole number)" >&2
    exit 2
    ;;
esac
sanitizer="${FUZZ_SANITIZER:-none}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

tc=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  tc=(+nightly)
else
  echo "no nightly toolchain: using the default one with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "${tc[@]}" fuzz list)
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi

cargo "${tc[@]}" fuzz build -O -s "$sanitizer"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "corpus/$t"
  echo "== fuzz $t for ${secs}s"
  if cargo "${tc[@]}" fuzz run -O -s "$sanitizer" "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$scratch/$t.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$t.log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$scratch/$t.log" | tail -1 || true)
    echo "ok: $t ($runs runs, $cov)"
    passed=$((passed + 1))
  else
    echo "FAILED: $t; the end of its log:"
    tail -n 40 "$scratch/$t.log"
    failed=$((failed + 1))
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
