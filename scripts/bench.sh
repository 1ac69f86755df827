#!/usr/bin/env bash
# make bench: thumbs vs Node.js/sharp vs vipsthumbnail on a corpus of Debian wallpaper photos.
# Installs what it needs (Debian packages, the pinned npm contender, the project venv for moto),
# builds target/release/thumbs, runs bench/bench.py and writes docs/benchmarks/.
# Extra arguments go to bench/bench.py (e.g. --rounds 1 --single-rounds 1 --startup-trials 2).
# Takes about 15 minutes on 2 cores. Not part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt.sh libvips-tools libimage-exiftool-perl libheif-examples util-linux python3 \
  libvips-dev pkg-config
# Debian's nodejs/npm, unless a Node.js (e.g. NodeSource's, which bundles npm) is there already.
command -v node >/dev/null || scripts/apt.sh nodejs
command -v npm >/dev/null || scripts/apt.sh npm
scripts/venv.sh
scripts/corpus.sh
(cd bench && npm ci --no-audit --no-fund --loglevel=error)
flock /tmp/rust-build.lock cargo build --release --bin thumbs
results=target/bench-results/results.json
.venv/bin/python bench/bench.py --out "$results" "$@"
mkdir -p docs/benchmarks
cp "$results" docs/benchmarks/results.json
python3 bench/report.py docs/benchmarks/results.json docs/benchmarks
echo "report: docs/benchmarks/README.md"
