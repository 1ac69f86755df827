#!/usr/bin/env bash
# Freely licensed source images from Debian packages: the benchmark corpus and the fixtures' sources.
#   scripts/build/corpus.sh extract PKG...  download PKG's .deb (no install) and unpack it under
#                                           .cache/debsrc/PKG; prints one directory per package
#   scripts/build/corpus.sh [build]         build the benchmark corpus in target/bench-corpus/
# Safe to run twice: downloads and derived files are reused when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=$root/.cache/debsrc

# Unpack one Debian package (any architecture-independent one) without installing it.
extract() {
  local pkg=$1 dir=$cache/$1
  if [ ! -f "$dir/.done" ]; then
    mkdir -p "$dir"
    (cd "$dir" && rm -f ./*.deb &&
      { apt-get download "$pkg" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download "$pkg" >/dev/null 2>&1; }; } &&
      dpkg-deb -x ./*.deb root && dpkg-deb -f ./*.deb Version >version && touch .done)
  fi
  echo "$dir"
}

cmd=${1:-build}
if [ "$cmd" = extract ]; then
  shift
  for p in "$@"; do extract "$p"; done
  exit 0
fi
[ "$cmd" = build ] || { echo "usage: $0 [build] | extract PKG..." >&2; exit 2; }

scripts/setup/apt.sh libvips-tools libimage-exiftool-perl libheif-examples
export VIPS_WARNING=0
dest=$root/target/bench-corpus
mkdir -p "$dest/jpeg" "$dest/derived"

# name|package|path in package|author, licence (from the package's copyright file)
sources='
kleiber|lomiri-wallpapers-20.04|usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg|photo, Lukas Baubkus 2021, CC-BY-SA-3.0
seeding|lomiri-wallpapers-16.04|usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg|photo, Clements Engelhardt, CC0-1.0
dragonfly|lomiri-wallpapers-16.04|usr/share/backgrounds/Dragonfly_by_Bolly.jpg|photo, Bolly, CC-BY-SA-4.0
sunset|lomiri-wallpapers-16.04|usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg|photo, Aitzol Berasategi 2018, CC-BY-4.0
elephants|mate-backgrounds|usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg|painting (photographed/scanned), Wyng Stancikaite 2020, GPL-2+
infinite-sea|lomiri-wallpapers-20.04|usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg|photo composite, Aury88 2019, CC-BY-SA-3.0
painting-colors|lomiri-wallpapers-20.04|usr/share/backgrounds/Painting-Colors_by__herobrine7gamer.jpg|digital art, HEROBRINE7GAMER 2021, CC-BY-SA-3.0
kde-volna|plasma-workspace-wallpapers|usr/share/wallpapers/Volna/contents/images/5120x2880.jpg|digital art, KDE Visual Design Group, GPL-2+
kde-safelanding|plasma-workspace-wallpapers|usr/share/wallpapers/SafeLanding/contents/images/5120x2880.jpg|digital art, KDE Visual Design Group, GPL-2+
kde-flow|plasma-workspace-wallpapers|usr/share/wallpapers/Flow/contents/images/5120x2880.jpg|digital art, KDE Visual Design Group, GPL-2+
kde-shell|plasma-workspace-wallpapers|usr/share/wallpapers/Shell/contents/images/5120x2880.jpg|digital art, KDE Visual Design Group, GPL-2+
kde-honeywave|plasma-workspace-wallpapers|usr/share/wallpapers/Honeywave/contents/images/5120x2880.jpg|digital art, KDE Visual Design Group, GPL-2+
'

manifest=$dest/manifest.tsv
printf 'file\twidth\theight\tmegapixels\tbytes\tpackage\tversion\tsource\tkind, author, licence\n' >"$manifest.tmp"
row() { # file package version source note
  local w h
  w=$(vipsheader -f width "$dest/$1") h=$(vipsheader -f height "$dest/$1")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$w" "$h" "$(awk "BEGIN{printf \"%.1f\", $w*$h/1e6}")" \
    "$(stat -c %s "$dest/$1")" "$2" "$3" "$4" "$5" >>"$manifest.tmp"
}

while IFS='|' read -r name pkg path note; do
  [ -n "$name" ] || continue
  dir=$(extract "$pkg")
  cp -u "$dir/root/$path" "$dest/jpeg/$name.jpg" # the packaged file, byte for byte
  row "jpeg/$name.jpg" "$pkg" "$(cat "$dir/version")" "/$path" "$note"
done <<<"$sources"

# Derived cases, all from the CC0 photo (5312x2988, 15.9 MP), at full size.
src=$dest/jpeg/seeding.jpg
gs=$(extract libgs-common)
d=$dest/derived
derive() { # file note command...
  local file=$1 note=$2
  shift 2
  [ -s "$d/$file" ] || "$@"
  row "derived/$file" lomiri-wallpapers-16.04 "$(cat "$cache/lomiri-wallpapers-16.04/version")" \
    "seeding.jpg" "$note; photo, Clements Engelhardt, CC0-1.0"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
orient6() {
  vips rot "$src" "$tmp/r.v" d270
  vips jpegsave "$tmp/r.v" "$d/orient6.jpg" --Q 90
  exiftool -q -overwrite_original -n -Orientation=6 "$d/orient6.jpg"
}
alpha() {
  vips black "$tmp/m.v" 5312 2988
  vips draw_circle "$tmp/m.v" 255 2656 1494 1400 --fill
  vips bandjoin "$src $tmp/m.v" "$d/alpha.png"
}
derive orient6.jpg "pixels turned 90 CCW, EXIF Orientation 6" orient6
derive cmyk.jpg "CMYK via Ghostscript's SWOP profile (embedded), Q90" \
  vips icc_export "$src" "$d/cmyk.jpg[Q=90]" --output-profile "$gs/root/usr/share/color/icc/ghostscript/default_cmyk.icc"
derive progressive.jpg "progressive JPEG, Q90" vips jpegsave "$src" "$d/progressive.jpg" --Q 90 --interlace
derive alpha.png "RGBA PNG, opaque disc, transparent outside" alpha
derive photo.webp "WebP Q85" vips webpsave "$src" "$d/photo.webp" --Q 85
derive photo.heic "HEIC (HEVC, heif-enc -q 60)" heif-enc -q 60 -o "$d/photo.heic" "$src"
mv "$manifest.tmp" "$manifest"
echo "corpus: $(($(wc -l <"$manifest") - 1)) files in $dest (manifest.tsv)"
