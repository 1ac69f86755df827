#!/usr/bin/env bash
# LocalStack (S3, SQS, CloudFormation, ...) without Docker, for tests/localstack.
# Usage: scripts/local-aws/localstack.sh up [PORT]   install if needed, start it (default port 4566, the next free one
#                                          if taken), print its env (eval-able, like scripts/local-aws/local-aws.sh)
#        scripts/local-aws/localstack.sh env         print the env of the running server
#        scripts/local-aws/localstack.sh down        stop it
# Installs scripts/setup/requirements-localstack.txt into .venv-localstack (once; reused after). LocalStack needs
# Python >= 3.13 here: LOCALSTACK_PYTHON, else python3.13 on PATH, else pyenv's newest 3.13.x.
# State (pid, port, log, LocalStack's own files) lives in target/localstack/. Safe to run twice: `up` reuses a
# live server.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=LocalStack state=target/localstack log=target/localstack/localstack.log marker=localstack.runtime.main
default_port=4566 start_tries=600
venv=.venv-localstack

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

answers() { # LocalStack answers on this port with S3, SQS and CloudFormation ready
  python3 - "$1" <<'PY'
import json, sys, urllib.request
try:
    doc = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_localstack/health", timeout=2))
except Exception:
    sys.exit(1)
states = doc.get("services", {})
sys.exit(0 if all(states.get(s) in ("available", "running") for s in ("s3", "sqs", "cloudformation", "events")) else 1)
PY
}

start() {
  local python
  python=$(find_python)
  VENV_PYTHON=$python scripts/setup/venv.sh "$venv" scripts/setup/requirements-localstack.txt >&2
  # hypercorn: the default server binds 0.0.0.0. No event telemetry, no certificate download, no DNS
  # server (all need the internet or port 53). OVERRIDE_IN_DOCKER=0: inside any container (CI, this
  # machine) it would otherwise write to /var/lib/localstack; now its files go under FILESYSTEM_ROOT (S3
  # object bodies still go to the hard-coded /tmp/localstack-s3-storage).
  GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$1" DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    DNS_ADDRESS=0 SERVICES=s3,sqs,cloudformation,iam,sts,cloudwatch,sns,kms,logs,events \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$PWD/$state/fs" \
    setsid "$venv/bin/python" -m localstack.runtime.main >"$log" 2>&1 </dev/null &
}

# shellcheck source=scripts/local-aws/emulator-common.sh
. scripts/local-aws/emulator-common.sh
emulator_main "$@"
