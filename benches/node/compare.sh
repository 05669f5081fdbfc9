#!/usr/bin/env bash
# Times express-session's cookie path (cookie 0.7.2 parse + cookie-signature
# 1.0.7 unsign, pinned in package-lock.json) and the Rust core's on the same
# header (header.txt: 383 bytes, 7 cookies, browser-encoded connect.sid),
# both the same way (warm-up, then rounds of N iterations, median ns/op),
# and prints both and the ratio. Goal: Rust >= 60x faster.
#
#   bash benches/node/compare.sh [--rounds 7]
#
# Needs Node 20+ and cargo; runs `npm ci` here if node_modules is missing.
# Never build with -C target-cpu=native: on this CPU it makes SHA-256 ~80x
# slower (see BENCHMARKS.md); the default runtime detection is right.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds=7
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:-}"; shift 2 ;;
    --rounds=*) rounds="${1#*=}"; shift ;;
    *) echo "usage: bash benches/node/compare.sh [--rounds N]" >&2; exit 2 ;;
  esac
done
case "$rounds" in '' | *[!0-9]* | 0) echo "--rounds needs a whole number >= 1" >&2; exit 2 ;; esac
command -v node >/dev/null || { echo "node not found: install Node 20 or later" >&2; exit 1; }
if [ ! -d "$here/node_modules/express-session" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
case "${RUSTFLAGS:-}" in
  *target-cpu=native*) echo "refusing RUSTFLAGS with target-cpu=native (SHA-NI slowdown)" >&2; exit 2 ;;
esac

(cd "$root" && cargo build --release -q -p session-sockets-benches --bin rust_path)
bin="$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/release/rust_path"

rust_json="$("$bin" --rounds "$rounds")"
node_json="$(node "$here/express_path_bench.js" --rounds "$rounds")"

RUST_JSON="$rust_json" NODE_JSON="$node_json" node -e '
const rust = process.env.RUST_JSON.trim().split("\n").map(l => JSON.parse(l));
const node = JSON.parse(process.env.NODE_JSON);
const by = Object.fromEntries(rust.map(r => [r.name, r]));
const row = (name, ns, note) => console.log(name.padEnd(16) + String(ns.toFixed(1)).padStart(10) + " ns/op  " + note);
row(node.name, node.ns_per_op, "express-session 1.19.0 getcookie (cookie.parse + unsign), Node " + process.version);
row("rust_path", by.rust_path.ns_per_op, "core resolve_cookie (parse + s: check + verify)");
row("rust_handshake", by.rust_handshake.ns_per_op, "core handshake, all headers to the Load request");
row("bare_hmac", by.bare_hmac.ns_per_op, "floor: pre-keyed HMAC-SHA256 verify of the id (hmac 0.12)");
console.log("handshake / bare HMAC = " + (by.rust_handshake.ns_per_op / by.bare_hmac.ns_per_op).toFixed(2) + "x (goal <= 1.3x)");
const ratio = node.ns_per_op / by.rust_path.ns_per_op;
const ratioHs = node.ns_per_op / by.rust_handshake.ns_per_op;
console.log("ratio: express_path / rust_path = " + ratio.toFixed(1) + "x; express_path / rust_handshake = " + ratioHs.toFixed(1) + "x (goal >= 60x): " + (ratio >= 60 ? "met" : "not met"));
'
