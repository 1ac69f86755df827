#!/usr/bin/env bash
# Freely licensed source images from Debian packages.
#   scripts/corpus.sh extract PKG...  download PKG's .deb (no install) and unpack it under
#                                     .cache/debsrc/PKG; prints one directory per package
#   scripts/corpus.sh [build]         build the benchmark corpus in target/bench-corpus/
# Safe to run twice: downloads and derived files are reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
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
