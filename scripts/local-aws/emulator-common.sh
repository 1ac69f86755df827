# The start/stop logic both local AWS emulators share (sourced by local-aws.sh and localstack.sh).
# `up [PORT]`, `env` and `down` for one local AWS emulator on a loopback port, with its pid, port
# and log in $state. The caller sets
#   name, state, log, marker (a word of the server's command line), default_port, start_tries (x 0.1 s)
# and defines
#   answers PORT       succeeds when the server is up
#   start PORT         starts it in the background (setsid, so `down` ends its whole process group)
# shellcheck shell=bash disable=SC2154  # name, state, log, ... are set by the sourcing script

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

ours() { # the recorded pid is still our server (not a reused pid)
  [ -f "$state/pid" ] && grep -qa "$marker" "/proc/$(cat "$state/pid")/cmdline" 2>/dev/null
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
  down
  local port=${1:-$default_port}
  while ! port_free "$port"; do port=$((port + 1)); done
  start "$port"
  echo $! >"$state/pid"
  echo "$port" >"$state/port"
  for _ in $(seq 1 "$start_tries"); do
    if answers "$port"; then print_env; return; fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$name did not come up on port $port; log: $log" >&2
  tail -n 30 "$log" >&2 || true
  down
  exit 1
}

down() {
  if ours; then
    local pid
    pid=$(cat "$state/pid")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$state/pid" "$state/port"
}

emulator_main() {
  mkdir -p "$state"
  case "${1:-}" in
    up) up "${2:-}" ;;
    env)
      if ! running; then echo "$name is not running: $0 up" >&2; exit 1; fi
      print_env ;;
    down) down ;;
    *) echo "usage: $0 up [PORT] | env | down" >&2; exit 2 ;;
  esac
}
