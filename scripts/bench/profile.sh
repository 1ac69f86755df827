#!/usr/bin/env bash
# Where thumbs' time goes, preset by preset, on the Lambda layer's libvips (Debian 13's 8.16.1):
# perf samples (cpu-clock, 999 Hz) of `thumbs render` over the same files, one core (taskset -c 0,
# VIPS_CONCURRENCY=1), once with the three presets and once with each preset alone (its own
# decode included: "all" minus the three single runs' decodes is what sharing saves). Per run
# target/bench-results/profile/NAME.txt holds the share of samples per library and the top named
# functions (libraries' exported symbols only: Debian ships them stripped), and NAME.ms the
# in-process time per image; summary.txt puts the runs side by side with the floor's decode and
# encode times (bench/floor.c) on the same files, and the floor's decode with sharp's faster JPEG
# shrink-on-load (--fast-shrink): what that step would save. perf samples time: run it at a
# quiet moment.
# Usage: scripts/bench/profile.sh [FILE...]   (default: the corpus' 12 packaged JPEGs)
# Takes about a minute on the default files (a quiet machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v perf >/dev/null || scripts/setup/apt.sh linux-perf
release=trixie
root=$(scripts/setup/libvips-root.sh "$release")
[ bench/floor.c -ot target/bench-results/floor ] || scripts/bench/layer-contenders.sh
thumbs=target/bench-results/thumbs
[ -x "$thumbs" ] || thumbs=target/release/thumbs
[ -x "$thumbs" ] || flock /tmp/rust-build.lock cargo build --release --bin thumbs
if [ $# -gt 0 ]; then
  files=("$@")
else
  scripts/build/corpus.sh >/dev/null
  files=(target/bench-corpus/jpeg/*.jpg)
fi
out=target/bench-results/profile
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$out"
presets="thumb=150x150:cover,small=480,large=1080"
export VIPS_CONCURRENCY=1 VIPS_WARNING=1 THUMBS_FORMATS=webp THUMBS_QUALITY=webp=80 RUST_LOG=warn
export LIBVIPS_ROOT=$root
# On the layer's libvips, as bench/bench.py runs it: perf follows the loader into thumbs.
on_layer() { taskset -c 0 scripts/setup/libvips-run.sh "$release" "$@"; }

for name in all thumb small large; do
  if [ "$name" = all ]; then p=$presets; else p=$(tr , '\n' <<<"$presets" | grep "^$name="); fi
  THUMBS_PRESETS=$p perf record -q -F 999 -o "$scratch/$name.data" -- \
    taskset -c 0 scripts/setup/libvips-run.sh "$release" "$thumbs" render --jobs 1 \
    --out "$scratch/$name" "${files[@]}" 2>"$scratch/$name.log"
  # "[i/n] ok FILE (3 renditions, 123 ms)" -> "FILE 123"
  sed -nE 's/.*\] ok +(.+) \([0-9]+ renditions?, ([0-9]+) ms\)$/\1 \2/p' "$scratch/$name.log" \
    >"$out/$name.ms"
  {
    echo "# thumbs render, presets: $p; $(wc -l <"$out/$name.ms") files, one core"
    echo "## samples per library"
    perf report -i "$scratch/$name.data" --stdio --no-children --sort dso 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -15
    # Debian's libraries are stripped to their exported symbols (debian-debug is not reachable
    # here): a sample in an internal function shows as an address and is left out of this list.
    echo "## top named functions (samples in unnamed internal functions are not listed)"
    perf report -i "$scratch/$name.data" --stdio --no-children --sort dso,symbol \
      --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | grep -v '\] 0x' | head -30
  } >"$out/$name.txt"
done
on_layer target/bench-results/floor --out "$scratch/floor" "${files[@]}" >"$scratch/floor.json"
on_layer target/bench-results/floor --fast-shrink --out "$scratch/fast" "${files[@]}" \
  >"$scratch/fast.json"

python3 - "$out" "$scratch/floor.json" "$scratch/fast.json" >"$out/summary.txt" <<'EOF'
import json, sys
from pathlib import Path
out, floor, fast = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ms = {n: dict(line.rsplit(" ", 1) for line in (out / f"{n}.ms").read_text().splitlines())
      for n in ("all", "thumb", "small", "large")}
fl, fa = ({r["file"]: r for r in map(json.loads, open(p)) if "ms" in r} for p in (floor, fast))
files = [f for f in ms["all"] if f in fl and f in fa]
print("in-process ms per image, one core, the layer's libvips (thumbs render; floor: bench/floor.c;"
      "\nfast decode: the floor's decode with --fast-shrink, sharp's JPEG shrink-on-load)")
cols = ("all", "thumb", "small", "large", "sum3", "floor", "decode", "encode", "fast decode")
print(f"{'file':26}" + "".join(f" {c:>6}" for c in cols) + f" {'all/floor':>9}")
tot = dict.fromkeys(cols, 0.0)
for f in files:
    row = {n: float(ms[n].get(f, "nan")) for n in ms}
    row.update(floor=fl[f]["ms"], decode=fl[f]["decode_ms"], encode=fl[f]["encode_ms"])
    row["sum3"] = row["thumb"] + row["small"] + row["large"]
    row["fast decode"] = fa[f]["decode_ms"]
    for k in tot:
        tot[k] += row[k]
    print(f"{Path(f).name:26}" + "".join(f" {row[c]:6.0f}" for c in cols)
          + f" {row['all'] / row['floor']:9.2f}")
print(f"{'total':26}" + "".join(f" {tot[c]:6.0f}" for c in cols)
      + f" {tot['all'] / tot['floor']:9.2f}")
print("\nthumbs' time over the floor's (all - floor) is what the engine spends on colour, rotation,"
      "\nresizes, the attention crop, the placeholder, reading and writing: see all.txt for where."
      "\ndecode - fast decode is what shrinking JPEGs on load as sharp does would save on the decode.")
EOF
cat "$out/summary.txt"
echo "profile: $out/{all,thumb,small,large}.txt, $out/summary.txt" >&2
