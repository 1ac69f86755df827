#!/usr/bin/env bash
# Run a program built here against one Debian release's libvips (8.14, 8.16 or 8.18).
# `bookworm` is the system's
# (Debian 12, 8.14); `trixie` (Debian 13, 8.16) and `sid` (unstable, 8.18) run from the library
# root of scripts/setup/libvips-root.sh through that release's own loader, so nothing comes from the
# system (libvips keeps its soname across 8.x). Usage: scripts/setup/libvips-run.sh RELEASE PROGRAM [ARG...]
# With LIBVIPS_TRACE=PREFIX, the loader writes its trace of every object it maps to PREFIX.PID.
set -euo pipefail
release=${1:?usage: scripts/setup/libvips-run.sh RELEASE PROGRAM [ARG...]}
shift
if [ "$release" = bookworm ]; then
  exec "$@"
fi
# LIBVIPS_ROOT names the root libvips-root.sh printed for RELEASE, sparing its check (~0.6 s) on
# every start: the benchmark times processes started this way.
root=${LIBVIPS_ROOT:-$("$(dirname "$0")/libvips-root.sh" "$release")}
lib=$root/usr/lib/x86_64-linux-gnu
# VIPSHOME must end in the last part of libvips' compiled-in libdir (usr/lib), or libvips looks
# for its modules (HEIC/AVIF) in the wrong folder and silently runs without them.
trace=()
[ -z "${LIBVIPS_TRACE:-}" ] || trace=(LD_DEBUG=files "LD_DEBUG_OUTPUT=$LIBVIPS_TRACE")
exec env "${trace[@]}" VIPSHOME="$root/usr/lib" LIBHEIF_PLUGIN_PATH="$lib/libheif/plugins" \
  "$lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$lib" "$@"
