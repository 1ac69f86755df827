#!/usr/bin/env bash
# Benchmark of `thumbs backfill` at 10,000 originals on the local AWS (moto), by hand.
# Measured once: list + enqueue time and rate, then every one rendered exactly once by a worker. Not part of `make test` (which runs
# the same test with 1,000). Figures: target/e2e/backfill.json. Usage: scripts/bench/backfill-bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/venv.sh
cargo build --release --locked
BACKFILL_OBJECTS=${1:-10000} THUMBS_BIN=target/release/thumbs \
  .venv/bin/python -m pytest -q -s tests/e2e/test_backfill.py -k exactly_once
cat target/e2e/backfill.json
