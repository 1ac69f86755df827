#!/usr/bin/env bash
# Local AWS (moto server) for the demo and the end-to-end tests.
# Usage: scripts/local-aws.sh up [PORT]   start moto (default port 5000, the next free one if taken), print env
#        scripts/local-aws.sh env         print the env of the running server (eval-able)
#        scripts/local-aws.sh down        stop it
# State (pid, port, log) lives in target/local-aws/. Safe to run twice: `up` reuses a live server.
set -euo pipefail
cd "$(dirname "$0")/.."
state=target/local-aws
mkdir -p "$state"

answers() { # the moto dashboard answers on this port (data.json can 500 on dangling state)
  python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
except Exception:
    sys.exit(1)
EOF
}

port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

ours() { # the recorded pid is still our moto server (not a reused pid)
  [ -f "$state/pid" ] && grep -qa moto_server "/proc/$(cat "$state/pid")/cmdline" 2>/dev/null
}

running() { # our server is alive and answering
  ours && [ -f "$state/port" ] && answers "$(cat "$state/port")"
}

print_env() {
  local port
  port=$(cat "$state/port")
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
EOF
}

up() {
  if running; then print_env; return; fi
  rm -f "$state/pid" "$state/port"
  scripts/venv.sh >&2
  local port=${1:-5000}
  while ! port_free "$port"; do port=$((port + 1)); done
  # setsid: its own process group, so `down` ends exactly the server and nothing else.
  setsid .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 </dev/null &
  echo $! >"$state/pid"
  echo "$port" >"$state/port"
  for _ in $(seq 1 100); do
    if answers "$port"; then print_env; return; fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "moto did not come up on port $port; log: $state/moto.log" >&2
  tail -n 20 "$state/moto.log" >&2 || true
  down
  exit 1
}

down() {
  if ours; then
    local pid
    pid=$(cat "$state/pid")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$state/pid" "$state/port"
}

case "${1:-}" in
  up) up "${2:-}" ;;
  env)
    if ! running; then echo "local AWS is not running: scripts/local-aws.sh up" >&2; exit 1; fi
    print_env ;;
  down) down ;;
  *) echo "usage: $0 up [PORT] | env | down" >&2; exit 2 ;;
esac
