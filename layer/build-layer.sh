#!/usr/bin/env bash
# Turn shared libraries into a Lambda layer tree for /opt: the DT_NEEDED closure of the given
# libraries, executables and libvips modules, copied under their sonames into OUT/lib (no
# symlinks: zips and layers handle regular files best), stripped, the loader included, and the
# chosen libvips modules where libvips looks for them with VIPSHOME=/opt. Used by scripts/build/dist.sh
# (Debian sysroot) and by the Nix layer derivation (nix/layer.nix).
#
# Usage: layer/build-layer.sh --out DIR [--sysroot DIR] [--search DIR:DIR...]
#          [--modules-dir DIR --modules NAME,NAME] [--heif-plugins-dir DIR --heif-plugins NAME,NAME]
#          [--exe ELF]... LIBRARY...
#   --sysroot  prefix for absolute library paths (RPATH/RUNPATH entries); empty for Nix
#   --search   where to look for a soname after the object's own RPATH/RUNPATH
#   --exe      walk this executable's needs and its loader (PT_INTERP) but do not copy it
#   --modules  libvips module names (vips-NAME.so) to copy from --modules-dir
#   --heif-plugins  libheif plugin names (libheif-NAME.so; libheif 1.18+ as in Debian 13 splits its
#              codecs into plugins) copied to OUT/lib/libheif/plugins, which libheif finds only
#              through LIBHEIF_PLUGIN_PATH (its compiled-in folder is under /usr)
# Env: READELF (default readelf), STRIP (default aarch64-linux-gnu-strip, else strip), PATCHELF.
set -euo pipefail

out="" sysroot="" search="" modules_dir="" modules="" plugins_dir="" plugins="" exes=() seeds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --sysroot) sysroot=${2%/}; shift 2 ;;
    --search) search=$2; shift 2 ;;
    --modules-dir) modules_dir=${2%/}; shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --heif-plugins-dir) plugins_dir=${2%/}; shift 2 ;;
    --heif-plugins) plugins=$2; shift 2 ;;
    --exe) exes+=("$2"); shift 2 ;;
    -*) echo "build-layer: unknown option $1" >&2; exit 2 ;;
    *) seeds+=("$1"); shift ;;
  esac
done
[ -n "$out" ] || { echo "build-layer: --out is required" >&2; exit 2; }
READELF=${READELF:-readelf}
PATCHELF=${PATCHELF:-patchelf}
if [ -z "${STRIP:-}" ]; then
  STRIP="strip"
  command -v aarch64-linux-gnu-strip >/dev/null && STRIP=aarch64-linux-gnu-strip
fi

dyn() { "$READELF" -d "$1" 2>/dev/null; }
needed() { dyn "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
rpaths() { dyn "$1" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]$/\2/p' | tr ':' '\n'; }
interp() { "$READELF" -l "$1" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]$/\1/p'; }
machine() { "$READELF" -h "$1" | sed -n 's/^ *Machine: *//p'; }

# The soname NAME needed by OBJECT: its own RPATH/RUNPATH first (as the loader would), then
# --search; only a file of OBJECT's machine counts.
resolve() {
  local name=$1 obj=$2 dir want
  want=$(machine "$obj")
  while IFS= read -r dir; do
    [ -n "$dir" ] || continue
    dir=${dir//\$ORIGIN/$(dirname "$obj")}
    case "$dir" in /*) [ "${dir#"$sysroot"}" != "$dir" ] || dir="$sysroot$dir" ;; esac
    if [ -f "$dir/$name" ] && [ "$(machine "$dir/$name")" = "$want" ]; then
      echo "$dir/$name"
      return 0
    fi
  done < <(rpaths "$obj"; tr ':' '\n' <<<"$search")
  echo "build-layer: $name (needed by $obj) not found" >&2
  return 1
}

rm -rf "$out"
mkdir -p "$out/lib"
declare -A copied=() # destination -> 1
walk=()              # original files whose needs are still to resolve, in discovery order
add() { # add DEST SRC: copy SRC to DEST once and walk the original (its $ORIGIN, its RPATH)
  [ -z "${copied[$1]:-}" ] || return 0
  copied[$1]=1
  cp -L "$2" "$1"
  chmod 0755 "$1"
  walk+=("$2")
}

for exe in "${exes[@]}"; do
  walk+=("$exe")
  loader=$(interp "$exe")
  [ -n "$loader" ] || { echo "build-layer: $exe has no ELF interpreter" >&2; exit 1; }
  src=$(resolve "$(basename "$loader")" "$exe")
  add "$out/lib/$(basename "$loader")" "$src"
done
for lib in "${seeds[@]}"; do
  add "$out/lib/$(basename "$lib")" "$lib"
done
if [ -n "$modules" ]; then
  # libvips looks in $VIPSHOME/<basename of its libdir>/vips-modules-X.Y (measured with
  # Debian's 8.14: /opt/aarch64-linux-gnu/vips-modules-8.14; a libdir of lib gives /opt/lib/...).
  mod_dest="$out/$(basename "$(dirname "$modules_dir")")/$(basename "$modules_dir")"
  mkdir -p "$mod_dest"
  for m in ${modules//,/ }; do
    [ -f "$modules_dir/vips-$m.so" ] || { echo "build-layer: no vips-$m.so in $modules_dir" >&2; exit 1; }
    add "$mod_dest/vips-$m.so" "$modules_dir/vips-$m.so"
  done
fi
if [ -n "$plugins" ]; then
  mkdir -p "$out/lib/libheif/plugins"
  for p in ${plugins//,/ }; do
    [ -f "$plugins_dir/libheif-$p.so" ] || { echo "build-layer: no libheif-$p.so in $plugins_dir" >&2; exit 1; }
    add "$out/lib/libheif/plugins/libheif-$p.so" "$plugins_dir/libheif-$p.so"
  done
fi
[ "${#walk[@]}" -gt 0 ] || { echo "build-layer: nothing to do" >&2; exit 2; }
# glibc dlopen()s libgcc_s for unwinding (pthread_cancel, backtraces) without naming it.
if src=$(resolve libgcc_s.so.1 "${walk[0]}" 2>/dev/null); then
  add "$out/lib/libgcc_s.so.1" "$src"
fi

i=0
while [ "$i" -lt "${#walk[@]}" ]; do
  obj=${walk[$i]}
  i=$((i + 1))
  for name in $(needed "$obj"); do
    [ -z "${copied[$out/lib/$name]:-}" ] || continue
    src=$(resolve "$name" "$obj")
    add "$out/lib/$name" "$src"
  done
done

# Strip; an RPATH/RUNPATH (Nix store paths) becomes RPATH /opt/lib so every library finds its
# needs in the layer even ahead of Lambda's LD_LIBRARY_PATH. Libraries without one stay as built.
while IFS= read -r -d '' f; do
  "$STRIP" --strip-unneeded "$f"
  if [ -n "$(rpaths "$f")" ]; then
    "$PATCHELF" --force-rpath --set-rpath /opt/lib "$f"
  fi
  if dyn "$f" | grep -q '/nix/store'; then
    echo "build-layer: $f still names /nix/store in its dynamic section" >&2
    exit 1
  fi
done < <(find "$out" -type f -print0)
echo "build-layer: $(find "$out" -type f | wc -l) files, $(du -sk "$out" | cut -f1) KiB in $out" >&2
