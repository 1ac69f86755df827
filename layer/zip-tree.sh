#!/usr/bin/env bash
# Zip a directory tree reproducibly: sorted names, fixed timestamps (SOURCE_DATE_EPOCH, in UTC),
# normalised modes (0755 if executable, else 0644), no directory entries, no extra fields (-X).
# Usage: layer/zip-tree.sh DIR OUT.zip    (the same tree always gives the same bytes)
set -euo pipefail
dir=$1
zip_out=$(realpath -m "$2")
# zip stores DOS times, which start in 1980: earlier epochs would be clamped by zip itself.
epoch=${SOURCE_DATE_EPOCH:-315532800}
[ "$epoch" -ge 315532800 ] || epoch=315532800
if find "$dir" -type l | grep -q .; then
  echo "zip-tree: $dir holds symlinks; lay out regular files instead" >&2
  exit 1
fi
find "$dir" -type f -perm /111 -exec chmod 0755 {} +
find "$dir" -type f ! -perm /111 -exec chmod 0644 {} +
find "$dir" -exec touch -h -d "@$epoch" {} +
rm -f "$zip_out"
(cd "$dir" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | TZ=UTC zip -X -D -9 -q "$zip_out" -@)
