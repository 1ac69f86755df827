#!/usr/bin/env bash
# Create (or reuse) a Python venv and install a requirements file into it.
# Usage: [VENV_PYTHON=python3] scripts/setup/venv.sh [VENV_DIR] [REQUIREMENTS]; safe to run twice (pip skips what is there).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${1:-.venv}
req=${2:-scripts/setup/requirements.txt}
python=${VENV_PYTHON:-python3}
stamp="$venv/.installed-$(sha256sum "$req" | cut -c1-16)"
[ -f "$stamp" ] && exit 0
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  scripts/setup/apt.sh python3-venv
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
touch "$stamp"
