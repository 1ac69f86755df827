#!/usr/bin/env bash
# Every check of the infrastructure (a step of `make test`): the template and the deploy scripts.
# Shellcheck of the deploy scripts, cfn-lint and checkov of the template, and the pytest suite in tests/infra (static template checks, then deploy.sh and
# destroy.sh run against a moto server on a free loopback port).
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/setup/apt.sh shellcheck python3-venv
scripts/setup/venv.sh .venv-lint scripts/setup/requirements-lint.txt
scripts/setup/venv.sh

echo "== shellcheck"
shellcheck -x scripts/deploy/*.sh scripts/check/test-infra.sh

echo "== cfn-lint $(.venv-lint/bin/cfn-lint --version)"
# Any error, warning or informational finding fails (non-zero exit).
# The examples (cloudformation/examples/: subscribers of the outcome events) are held to the same bar.
.venv-lint/bin/cfn-lint -- cloudformation/template.yaml cloudformation/examples/*.yaml

echo "== checkov $(.venv-lint/bin/checkov --version)"
# Skips live in the template's Metadata, each with a reason (tests/infra checks they have one).
.venv-lint/bin/checkov --skip-download --framework cloudformation --compact --quiet \
  -f cloudformation/template.yaml cloudformation/examples/*.yaml

echo "== pytest tests/infra"
.venv/bin/python -m pytest -q tests/infra
