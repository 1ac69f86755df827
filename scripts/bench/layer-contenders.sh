#!/usr/bin/env bash
# The benchmark's contenders on the Lambda layer's libvips (Debian 13's 8.16.1, the library root of
# scripts/setup/libvips-root.sh trixie), built from source here:
#  - sharp built against that libvips via pkg-config (SHARP_FORCE_GLOBAL_LIBVIPS, node-gyp with
#    the installed Node's own headers, nothing downloaded but npm packages): bench/sharp-global.
#    sharp 0.34.2 is the newest sharp that accepts libvips 8.16 (0.34.3 wants >= 8.17.1);
#  - the floor program bench/floor.c -> target/bench-results/floor.
# Headers and pkg-config files come from a second root with trixie's libvips-dev
# (target/libvips-roots/trixie-dev); both run through scripts/setup/libvips-run.sh trixie, i.e.
# with the layer root's libraries only (this host's own libvips is 8.14 and must not be picked).
# Safe to run twice. Used by scripts/bench/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
scripts/setup/libvips-root.sh trixie >/dev/null
read -r debian debian_security <<<"$(scripts/setup/debian-mirror.sh)"
dev=$(scripts/setup/debian-root.sh target/libvips-roots/trixie-dev amd64 "$debian trixie main" \
  "$debian trixie-updates main" "$debian_security trixie-security main" -- libvips-dev)
# matio.pc asks for hdf5.pc, which Debian provides through update-alternatives (not unpacked).
pc=$root/target/bench-results/pkgconfig
mkdir -p "$pc"
ln -sfn "$dev/usr/lib/x86_64-linux-gnu/pkgconfig/hdf5-serial.pc" "$pc/hdf5.pc"
export PKG_CONFIG_SYSROOT_DIR=$dev
export PKG_CONFIG_LIBDIR=$pc:$dev/usr/lib/x86_64-linux-gnu/pkgconfig:$dev/usr/share/pkgconfig
want=$(pkg-config --modversion vips-cpp)

# The floor, built against the dev root as a sysroot (its glibc headers and start files). Its
# linker scripts name /lib/...: Debian 13 is merged-/usr, and base-files' /lib, /lib64 links are not unpacked.
for d in lib lib64; do [ -e "$dev/$d" ] || ln -s "usr/$d" "$dev/$d"; done
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc --sysroot="$dev" -O2 -Wall -o target/bench-results/floor bench/floor.c \
  $(pkg-config --cflags --libs vips) -lm -lpthread

# sharp from source; --omit=optional leaves out the prebuilt binaries and libvips, so the only
# sharp.node is the one built here. node-gyp takes Node's headers from /usr/include/node when
# the installed Node has them (Debian's libnode-dev, NodeSource's nodejs) instead of downloading.
nodedir=()
[ -f /usr/include/node/common.gypi ] && nodedir=(--nodedir=/usr)
(cd bench/sharp-global && SHARP_FORCE_GLOBAL_LIBVIPS=1 npm ci --omit=optional --no-audit \
  --no-fund --loglevel=error "${nodedir[@]}" >/dev/null)

# Both must report the layer's libvips when run as the bench runs them.
run=scripts/setup/libvips-run.sh
got=$("$run" trixie "$(command -v node)" -p \
  'require("./bench/sharp-global/node_modules/sharp").versions.vips')
[ "$got" = "$want" ] || { echo "layer-contenders: sharp runs on libvips $got, not $want" >&2; exit 1; }
mkdir -p target/bench-results/floor-check
got=$("$run" trixie target/bench-results/floor --out target/bench-results/floor-check \
  tests/fixtures/landscape.jpg | sed -n 1p)
[ "$got" = "{\"vips\": \"$want\"}" ] ||
  { echo "layer-contenders: floor runs on $got, not libvips $want" >&2; exit 1; }
echo "layer-contenders: sharp $(node -p 'require("./bench/sharp-global/node_modules/sharp/package.json").version') and the floor on libvips $want" >&2
