#!/usr/bin/env bash
# A newcomer's path, checked: builds a fresh cargo project from README.md's
# own dependency lines and app snippet (the session-sockets line pointed at
# this checkout, everything else as written, offline from the registry
# cache), runs it on a free loopback port, and drives it with curl: a login
# sets the session cookie, and the session counts visits.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
app_pid=""
cleanup() { [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The first ```toml and the first ```rust block after the app's heading.
python3 - "$root/README.md" "$work" "$root" <<'PY'
import pathlib, re, sys
readme, work, root = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
text = open(readme).read()
start = text.index("## HTTP routes and socket.io on one session")
toml = re.search(r"```toml\n(.*?)```", text[start:], re.S).group(1)
rust = re.search(r"```rust[^\n]*\n(.*?)```", text[start:], re.S).group(1)
lines = toml.strip().splitlines()
assert lines[0] == "[dependencies]", lines[0]
deps = []
for line in lines[1:]:
    if line.startswith("session-sockets "):
        # This checkout, with the features the README names.
        line = re.sub(r'version = "[^"]*"', f'path = "{root}/shims"', line)
    deps.append(line)
(work / "src").mkdir()
(work / "Cargo.toml").write_text(
    '[package]\nname = "newcomer-app"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
    "[dependencies]\n" + "\n".join(deps) + "\n\n[workspace]\n"
)
(work / "src" / "main.rs").write_text(rust)
PY
cp "$root/Cargo.lock" "$work/Cargo.lock"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$work" && cargo build --offline -q)

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
sed -i "s/127.0.0.1:3000/127.0.0.1:$port/" "$work/src/main.rs"
(cd "$work" && cargo build --offline -q)
"$CARGO_TARGET_DIR/debug/newcomer-app" &
app_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/visits" && break; sleep 0.1; done
jar="$work/cookies"
status="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -X POST "http://127.0.0.1:$port/login")"
[ "$status" = 303 ] || { echo "POST /login answered $status, expected 303"; exit 1; }
grep -q "connect.sid" "$jar" || { echo "no session cookie after the login"; exit 1; }
curl -s -b "$jar" -c "$jar" "http://127.0.0.1:$port/visits" >/dev/null
second="$(curl -s -b "$jar" -c "$jar" "http://127.0.0.1:$port/visits")"
[ "$second" = "visit 2" ] || { echo "GET /visits answered '$second', expected 'visit 2'"; exit 1; }
echo "README app: built from the README, login and visits work"
