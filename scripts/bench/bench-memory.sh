#!/usr/bin/env bash
# make bench-memory: worst-case peak RSS of `thumbs render` per input format, at the limits.
# Makes the inputs (cached in target/bench-memory), renders each once per round in a fresh
# process and writes docs/benchmarks/memory.json. Three sets: inputs at the binary's default
# per-format limits (all accepted: their peaks are the budget), inputs at the former single
# limit of 64 MP (the formats that decode whole are now refused from the header), and extreme
# shapes (every format at its widest and tallest accepted side, and just over the side limits).
# Extra arguments go to bench/memory.py (e.g. --rounds 1). About 10 minutes on 2 cores the
# first time (encoding the 50 MP HEIC/AVIF inputs), 2 minutes after. Not part of make test.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/apt.sh libvips-tools libvips-dev pkg-config python3
flock /tmp/rust-build.lock cargo build --release --locked --bin thumbs
mkdir -p target/bench-memory docs/benchmarks
# Keep in step with `Limits::default()` in src/model/settings.rs.
limits=(--limit pixels=64000000 --limit interlaced=40000000 --limit heif=50000000
  --limit gif=16000000 --limit width=16384 --limit height=65535)
python3 bench/memory.py --label "at the default limits" --out target/bench-memory/limits.json \
  "${limits[@]}" "$@"
python3 bench/memory.py --label "at 64 MP, the former single limit" \
  --out target/bench-memory/64mp.json "$@"
python3 bench/memory.py --label "extreme shapes at the side limits" --shapes \
  --out target/bench-memory/shapes.json "${limits[@]}" "$@"
python3 - <<'PY' >docs/benchmarks/memory.json
import json
print(json.dumps([json.load(open(f"target/bench-memory/{n}.json")) for n in ("limits", "64mp", "shapes")], indent=2))
PY
echo "results: docs/benchmarks/memory.json"
