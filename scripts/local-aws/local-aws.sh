#!/usr/bin/env bash
# Local AWS (moto server) for the demo and the end-to-end tests.
# Usage: scripts/local-aws/local-aws.sh up [PORT]   start moto (default port 5000, the next free one if taken), print env
#        scripts/local-aws/local-aws.sh env         print the env of the running server (eval-able)
#        scripts/local-aws/local-aws.sh down        stop it
# State (pid, port, log) lives in target/local-aws/. Safe to run twice: `up` reuses a live server.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=moto state=target/local-aws log=target/local-aws/moto.log marker=moto_server default_port=5000 start_tries=100

answers() { # the moto dashboard answers on this port (data.json can 500 on dangling state)
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
except Exception:
    sys.exit(1)
PY
}

start() {
  scripts/setup/venv.sh >&2
  setsid .venv/bin/moto_server -H 127.0.0.1 -p "$1" >"$log" 2>&1 </dev/null &
}

# shellcheck source=scripts/local-aws/emulator-common.sh
. scripts/local-aws/emulator-common.sh
emulator_main "$@"
