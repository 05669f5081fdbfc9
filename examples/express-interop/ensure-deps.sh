#!/usr/bin/env bash
# Installs what the Express interop suite needs, only what is missing:
# redis-server (Debian package) and the Node app's pinned packages (npm ci
# from the committed package-lock.json). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${need[*]} and apt-get is not available: install Redis 6.2+ and Node 18+ by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
(cd node && npm ci --no-audit --no-fund --loglevel=error)
