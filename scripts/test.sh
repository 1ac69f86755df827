#!/usr/bin/env bash
# `make test`: every test, from a fresh Debian/Ubuntu machine. Installs what it needs, starts
# the local AWS emulator (moto) for the integration tests and stops it again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install build and test dependencies"
scripts/apt.sh build-essential pkg-config libvips-dev libvips-tools shellcheck python3-venv curl zip unzip
rustup component add rustfmt clippy >/dev/null 2>&1 || true
scripts/venv.sh

step "lint: rustfmt, clippy, shellcheck"
cargo fmt --all -- --check
cargo clippy --release --all-targets --locked -- -D warnings
shellcheck scripts/*.sh .ci/run layer/*.sh

step "build the release binary"
cargo build --release --locked

step "local AWS (moto) for the integration tests"
eval "$(scripts/local-aws.sh up)"
trap 'scripts/local-aws.sh down >/dev/null 2>&1 || true' EXIT

step "unit and integration tests (cargo test)"
cargo test --release --locked

step "libvips matrix: the golden render tests on Debian 12's 8.14, Debian 13's 8.16, unstable's 8.18"
scripts/libvips-matrix.sh

step "end-to-end tests of the binary: worker, faults, load, Lambda shell (pytest)"
THUMBS_BIN=target/release/thumbs .venv/bin/python -m pytest -q tests/e2e

step "infrastructure: cfn-lint, checkov, template assertions, deploy to moto"
scripts/test-infra.sh

step "arm64 artifacts: make dist twice (byte-identical zips), then run them as Lambda would"
scripts/hermetic-test.sh

step "Nix files: parse, nixpkgs-fmt, deadnix, lock and outputs (offline; nixpkgs itself cannot be fetched here)"
scripts/check-nix.sh
