#!/usr/bin/env bash
# `make test`: every test, from a fresh Debian/Ubuntu machine. Installs what it needs, starts
# the local AWS emulators (moto, then LocalStack) for the integration tests and stops them again.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Each step's wall time, printed as a table at the end (also when a step fails), so the
# slow steps are known from every run (README's per-step table comes from it).
step_names=() step_secs=() step_started=$SECONDS
step_end() {
  if ((${#step_names[@]})); then step_secs+=($((SECONDS - step_started))); fi
}
step() {
  step_end
  step_names+=("$*") step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
step_table() {
  step_end
  printf '\n==> time per step (seconds)\n'
  for i in "${!step_secs[@]}"; do printf '%6d  %s\n' "${step_secs[$i]}" "${step_names[$i]%%:*}"; done
  printf '%6d  total\n' "$SECONDS"
}
trap step_table EXIT

step "install build and test dependencies"
scripts/setup/apt.sh build-essential pkg-config libvips-dev libvips-tools shellcheck python3-venv curl zip unzip
rustup component add rustfmt clippy >/dev/null 2>&1 || true
scripts/setup/venv.sh

step "lint: rustfmt, clippy, shellcheck"
cargo fmt --all -- --check
cargo clippy --release --all-targets --locked -- -D warnings
shellcheck -x scripts/*/*.sh .ci/run layer/*.sh

step "build the release binary"
cargo build --release --locked

step "local AWS (moto) for the integration tests"
eval "$(scripts/local-aws/local-aws.sh up)"
trap 'scripts/local-aws/local-aws.sh down >/dev/null 2>&1 || true; step_table' EXIT

step "unit and integration tests (cargo test)"
cargo test --release --locked
# The render test that must have the process to itself (see its comment in tests/render.rs).
cargo test --release --locked --test render -- --ignored

step "libvips matrix: the golden render tests on Debian 12's 8.14, Debian 13's 8.16, unstable's 8.18"
scripts/check/libvips-matrix.sh

step "end-to-end tests of the binary: worker, faults, load, Lambda shell (pytest)"
THUMBS_BIN=target/release/thumbs .venv/bin/python -m pytest -q tests/e2e

step "the demo in a real browser: make demo (backfill, dead letter, redrive, delete), then headless Chromium loads demo-out/index.html"
# About 1.5 min; every image must load; screenshot in target/browser-check/demo.png, plus a negative control.
THUMBS_BIN=target/release/thumbs scripts/check/browser-check.sh

step "LocalStack: the template deployed with deploy.sh as it applies there, the worker on S3's own events (pytest)"
# In a subshell, so its endpoint does not replace moto's for the steps below. About 2 min, plus about 3 min
# the first time for the install (.venv-localstack).
(
  localstack_env=$(scripts/local-aws/localstack.sh up)  # not inside eval, which would hide a failed start
  eval "$localstack_env"
  trap 'scripts/local-aws/localstack.sh down >/dev/null 2>&1 || true' EXIT
  THUMBS_BIN=target/release/thumbs .venv/bin/python -m pytest -q tests/localstack
)

step "infrastructure: cfn-lint, checkov, template assertions, deploy to moto"
scripts/check/test-infra.sh

step "arm64 artifacts: make dist twice (byte-identical zips), then run them as Lambda would"
scripts/check/hermetic-test.sh

step "Nix: nixpkgs-fmt, deadnix, lock; the flake evaluated by a private Nix 2.26 against the stand-in nixpkgs; negative controls"
scripts/check/check-nix.sh
