#!/usr/bin/env bash
# LocalStack (S3, SQS, CloudFormation, ...) without Docker, for tests/localstack.
# Usage: scripts/localstack.sh up [PORT]   install if needed, start it (default port 4566, the next free one
#                                          if taken), print its env (eval-able, like scripts/local-aws.sh)
#        scripts/localstack.sh env         print the env of the running server
#        scripts/localstack.sh down        stop it
# Installs scripts/requirements-localstack.txt into .venv-localstack (once; reused after). LocalStack needs
# Python >= 3.13: LOCALSTACK_PYTHON, else python3.13 on PATH, else pyenv's newest 3.13.x.
# State (pid, port, log, LocalStack's own files) lives in target/localstack/. Safe to run twice: `up` reuses a
# live server.
set -euo pipefail
cd "$(dirname "$0")/.."
state=target/localstack
venv=.venv-localstack
mkdir -p "$state"

find_python() { # the first that runs and is >= 3.13 (pyenv's shims exist for versions not selected)
  local candidate
  for candidate in ${LOCALSTACK_PYTHON:-} python3.13 \
    $(find "${PYENV_ROOT:-$HOME/.pyenv}/versions" -maxdepth 3 -path '*/3.13.*/bin/python3' 2>/dev/null | sort -rV); do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "localstack: no Python 3.13 found (set LOCALSTACK_PYTHON, or install 3.13 with pyenv)" >&2
  exit 1
}

health() { # LocalStack answers on this port with S3, SQS and CloudFormation ready
  python3 - "$1" <<'EOF'
import json, sys, urllib.request
try:
    doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_localstack/health", timeout=2))
except Exception:
    sys.exit(1)
states = doc.get("services", {})
sys.exit(0 if all(states.get(s) in ("available", "running") for s in ("s3", "sqs", "cloudformation")) else 1)
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

ours() { # the recorded pid is still our LocalStack (not a reused pid)
  [ -f "$state/pid" ] && grep -qa localstack.runtime.main "/proc/$(cat "$state/pid")/cmdline" 2>/dev/null
}

running() {
  ours && [ -f "$state/port" ] && health "$(cat "$state/port")"
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
  VENV_PYTHON=$(find_python) scripts/venv.sh "$venv" scripts/requirements-localstack.txt >&2
  local port=${1:-4566}
  while ! port_free "$port"; do port=$((port + 1)); done
  # hypercorn: the default server binds 0.0.0.0. No event telemetry, no certificate download, no DNS
  # server (all need the internet or port 53). OVERRIDE_IN_DOCKER=0: inside any container (CI, this
  # machine) it would otherwise write to /var/lib/localstack; now its files go under FILESYSTEM_ROOT (S3
  # object bodies still go to the hard-coded /tmp/localstack-s3-storage). setsid: its own process group,
  # which `down` ends whole.
  GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$port" DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    DNS_ADDRESS=0 SERVICES=s3,sqs,cloudformation,iam,sts,cloudwatch,sns,kms,logs \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$PWD/$state/fs" \
    setsid "$venv/bin/python" -m localstack.runtime.main >"$state/localstack.log" 2>&1 </dev/null &
  echo $! >"$state/pid"
  echo "$port" >"$state/port"
  for _ in $(seq 1 600); do
    if health "$port"; then print_env; return; fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "LocalStack did not come up on port $port; log: $state/localstack.log" >&2
  tail -n 30 "$state/localstack.log" >&2 || true
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

case "${1:-}" in
  up) up "${2:-}" ;;
  env)
    if ! running; then echo "LocalStack is not running: scripts/localstack.sh up" >&2; exit 1; fi
    print_env ;;
  down) down ;;
  *) echo "usage: $0 up [PORT] | env | down" >&2; exit 2 ;;
esac
