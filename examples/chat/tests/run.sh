#!/usr/bin/env bash
# Real-client tests of the chat example: socket.io-client (polling and
# websocket) and headless Chromium via playwright-core, against the release
# `chat` binary. Idempotent; installs what is missing on a fresh Debian:
# chromium (and node/npm if absent) with apt-get, the pinned npm packages
# with `npm ci`. The browser test refreshes docs/chat.png (deterministic).
#
#   bash examples/chat/tests/run.sh
set -euo pipefail
chat_dir="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$chat_dir/../.." && pwd)"

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
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
(cd "$root" && cargo build --release --bin chat)
bin="${CARGO_TARGET_DIR:-$root/target}/release/chat"

status=0
echo "== socket.io-client (polling, websocket)"
(cd "$chat_dir" && node tests/client.test.js "$bin") || status=1
echo "== headless Chromium (playwright-core)"
(cd "$chat_dir" && node tests/browser.test.js "$bin" "$root/docs/chat.png") || status=1
exit $status
