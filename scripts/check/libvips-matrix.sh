#!/usr/bin/env bash
# The libvips version matrix of `make test`: the golden render tests on libvips 8.14, 8.16 and 8.18.
# The golden render tests (tests/render.rs, the test
# binary cargo builds here against Debian 12's libvips) run against Debian 12's 8.14 (the
# system), Debian 13's 8.16 and unstable's 8.18 (library roots from scripts/setup/libvips-root.sh,
# each run through its own loader). For the unpacked roots, the loader's trace must show that
# every library and module it loaded came from the root. Usage: scripts/check/libvips-matrix.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
releases=(bookworm trixie sid)
bin=$(cargo test --release --locked --test render --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "render" and m.get("executable"):
        print(m["executable"])')
[ -x "$bin" ] || { echo "libvips-matrix: no render test binary" >&2; exit 1; }
trace=$(mktemp -d)
trap 'rm -rf "$trace"' EXIT
failed=()
for release in "${releases[@]}"; do
  if [ "$release" = bookworm ]; then
    version=$(pkg-config --modversion vips)
  else
    root=$(scripts/setup/libvips-root.sh "$release")
    version=$(sed -n 's/^libvips42t64=\([^-]*\).*/\1/p' "$root/.packages")
  fi
  echo "--- libvips $version ($release)"
  if [ "$release" = bookworm ]; then
    scripts/setup/libvips-run.sh "$release" "$bin" -q || failed+=("$release")
    scripts/setup/libvips-run.sh "$release" "$bin" -q --ignored || failed+=("$release")
    continue
  fi
  LIBVIPS_TRACE="$trace/$release" scripts/setup/libvips-run.sh "$release" "$bin" -q || failed+=("$release")
  LIBVIPS_TRACE="$trace/$release" scripts/setup/libvips-run.sh "$release" "$bin" -q --ignored ||
    failed+=("$release")
  # "file=PATH [0];  generating link map" / "calling init: PATH": every object the loader mapped.
  loaded=$(cat "$trace/$release".* | sed -n 's/.*\(file=\|calling init: \)\(\/[^ ]*\).*/\2/p' | sort -u)
  outside=$(grep -v "^$root/" <<<"$loaded" | grep -vx "$bin" || true)
  if [ -n "$outside" ]; then
    echo "libvips-matrix: $release loaded objects from outside its root:" >&2
    echo "$outside" >&2
    failed+=("$release(isolation)")
  else
    echo "    $(wc -l <<<"$loaded") objects loaded, all from $root"
  fi
  grep -q "^$root/usr/lib/x86_64-linux-gnu/libvips.so.42" <<<"$loaded" || {
    echo "libvips-matrix: $release did not load its own libvips" >&2
    failed+=("$release(libvips)")
  }
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "libvips-matrix: failed on ${failed[*]}" >&2
  exit 1
fi
echo "libvips-matrix: the golden tests pass on ${releases[*]}"
