#!/usr/bin/env bash
# Benchmark of `thumbs backfill` at 10,000 originals on LocalStack, by hand: list + enqueue time and rate, then every
# one rendered exactly once by a worker (tests/e2e/test_backfill.py's exactly-once test with N=10,000;
# `make test` runs it with 1,000 on moto). LocalStack, not moto: moto 5.2.5's SQS walks the whole queue
# on every send and receive, so a 10,000-deep queue would measure moto (docs/benchmarks/backfill.md;
# scripts/bench/backfill_bench.py shows it). Figures: target/e2e/backfill.json.
# Usage: scripts/bench/backfill-bench.sh [N]   (THUMBS_BIN=path skips the cargo build)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/venv.sh
if [ -z "${THUMBS_BIN:-}" ]; then
  cargo build --release --locked
  THUMBS_BIN=target/release/thumbs
fi
localstack_env=$(scripts/local-aws/localstack.sh up)
trap 'scripts/local-aws/localstack.sh down' EXIT
eval "$localstack_env"
# ASCII keys: LocalStack fails a listing's second page after a non-ASCII key (see the test).
BACKFILL_OBJECTS=${1:-10000} BACKFILL_ASCII_KEYS=1 THUMBS_BIN=$THUMBS_BIN \
  .venv/bin/python -m pytest -q -s tests/e2e/test_backfill.py -k exactly_once
cat target/e2e/backfill.json
