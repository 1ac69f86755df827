#!/usr/bin/env bash
# make bench: thumbs vs Node.js/sharp vs vipsthumbnail on a corpus of Debian wallpaper photos,
# thumbs also on Debian 13's and unstable's libvips (library roots of scripts/setup/libvips-root.sh),
# and, on the Lambda layer's libvips (Debian 13's), against sharp built from source on it (the
# original's way and the best sharp pipeline) and against the floor (bench/floor.c).
# Installs what it needs (Debian packages, the pinned npm contenders, the project venv for moto),
# builds target/release/thumbs and the layer's contenders, runs bench/bench.py and writes
# docs/benchmarks/. Extra arguments go to bench/bench.py (e.g. --rounds 1 --single-rounds 1
# --startup-trials 2; --contender and --files for a quick check).
# Takes about 15 minutes on 2 cores once built (an estimate from the 2026-11-29 run's per-contender
# times, for 11 contenders and 3 rounds); a fresh machine adds the downloads and a release build.
# bench.py prints each section's time and the report shows them.
# Not part of make test.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/apt.sh libvips-tools libimage-exiftool-perl libheif-examples util-linux python3 \
  libvips-dev pkg-config gcc g++ make
# Debian's nodejs/npm, unless a Node.js (e.g. NodeSource's, which bundles npm) is there already.
command -v node >/dev/null || scripts/setup/apt.sh nodejs
command -v npm >/dev/null || scripts/setup/apt.sh npm
# node-gyp builds sharp against Node's own headers (no download here): Debian's are in libnode-dev.
[ -f /usr/include/node/common.gypi ] || scripts/setup/apt.sh libnode-dev
scripts/setup/venv.sh
scripts/build/corpus.sh
(cd bench && npm ci --no-audit --no-fund --loglevel=error)
# sharp 0.35 (prebuilt libvips 8.18) needs Node >= 20.9; Debian 12's Node 18 runs 0.34.5 only.
if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)'; then
  (cd bench/sharp-0.35 && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "bench: Node $(node --version) is older than 20.9: sharp 0.35 is left out" >&2
fi
# sharp from source and the floor, on the layer's libvips.
scripts/bench/layer-contenders.sh
# Build and snapshot the binary under the build lock: other engineers build in this work tree
# too, and a rebuild during the run must not swap the binary between contenders' rounds.
# The .commit file says which commit it was built from, "+dirty" if src/ or Cargo.* differed.
mkdir -p target/bench-results
flock /tmp/rust-build.lock sh -c 'cargo build --release --bin thumbs &&
  cp target/release/thumbs target/bench-results/thumbs &&
  { git rev-parse --short HEAD | tr -d "\n"
    git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || printf +dirty
    echo; } >target/bench-results/thumbs.commit'
results=target/bench-results/results.json
.venv/bin/python bench/bench.py --thumbs target/bench-results/thumbs --out "$results" "$@"
mkdir -p docs/benchmarks
cp "$results" docs/benchmarks/results.json
python3 bench/report.py docs/benchmarks/results.json docs/benchmarks
echo "report: docs/benchmarks/README.md"
