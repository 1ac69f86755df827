#!/usr/bin/env bash
# The demo page in a real browser, a step of `make test`: every image on it must load.
# Runs the demo, then headless Chromium (Debian's) loads demo-out/index.html; every <img> must load. Artifacts in target/browser-check/:
# demo.png (screenshot of the whole page), demo.log (the demo's output), and the negative
# control: the same page with one thumbnail file corrupted must fail the check.
# Env: THUMBS_BIN (passed to the demo: use this binary instead of building one).
set -euo pipefail
cd "$(dirname "$0")/../.."
art=target/browser-check
py=.venv/bin/python
scripts/setup/apt.sh chromium
scripts/setup/venv.sh
rm -rf "$art"
mkdir -p "$art"

start=$SECONDS
if ! scripts/demo/demo.sh >"$art/demo.log" 2>&1; then
  tail -n 40 "$art/demo.log" >&2
  echo "the demo failed (whole log: $art/demo.log)" >&2
  exit 1
fi
echo "demo: $((SECONDS - start))s (log: $art/demo.log)"
sed -n '/^== outcomes/,/^== worker stopped/p' "$art/demo.log"

$py scripts/check/browser_check.py demo-out/index.html --screenshot "$art/demo.png"

# Negative control: a page whose thumbnail is not a picture any more must fail.
cp -r demo-out "$art/broken"
victim=$(find "$art/broken/thumbnails" -name '*.webp' | sort | head -n 1)
printf 'not a webp' >"$victim"
if $py scripts/check/browser_check.py "$art/broken/index.html" --screenshot "$art/broken.png" >"$art/broken.log" 2>&1; then
  cat "$art/broken.log" >&2
  echo "negative control: the check passed a page with a broken image ($victim)" >&2
  exit 1
fi
echo "negative control (${victim#"$art"/broken/} corrupted) failed as it must:"
sed 's/^/  /' "$art/broken.log"
