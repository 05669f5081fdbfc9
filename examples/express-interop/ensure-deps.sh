#!/usr/bin/env bash
# Installs what the Express interop suite needs, only what is missing:
# redis-server (Debian package) and the Node app's pinned packages (npm ci
# from the committed package-lock.json). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing and apt-get is not available: install Redis 6.2+ by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm (Node 18+) are needed for the Express app: install them first" >&2
  exit 1
fi
(cd node && npm ci --no-audit --no-fund --loglevel=error)
