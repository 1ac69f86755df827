#!/usr/bin/env bash
# make fuzz: hunt for panics, hangs and memory overruns in `thumbs render` with mutated fixtures.
# Mutated and header-edited copies of the fixtures of every accepted input format, each run through `thumbs render` with a time limit and its peak memory measured; reports
# panics, hangs and runs over the memory budget (bench/fuzz.py says how). Writes
# target/fuzz/results.json and keeps the findings in target/fuzz/findings. Not part of make test.
# Extra arguments go to bench/fuzz.py (defaults: --seed 1 --cases 3000 --jobs 2 --timeout 20
# --budget-mb 512 --max-minutes 30); `--only N` rebuilds case N of a seed. About 8 minutes for
# 3,000 cases on 2 cores. Exits 1 when something was found.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/apt.sh libvips-tools libvips-dev pkg-config python3 time coreutils
flock /tmp/rust-build.lock cargo build --release --locked --bin thumbs
python3 bench/fuzz.py --thumbs target/release/thumbs "$@"
