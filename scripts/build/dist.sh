#!/usr/bin/env bash
# `make dist`: dist/function.zip (aarch64 `bootstrap`, linked against Debian 12's arm64 packages)
# and dist/layer.zip (libvips closure + glibc + loader, for /opt) from Debian 13's arm64 packages:
# its libvips 8.16 measured faster than Debian 12's 8.14 (docs/benchmarks/README.md); libvips keeps
# its soname and API across 8.x and the layer brings its own glibc (newer than the link's), so the
# bootstrap runs on it unchanged. Reproducible: the same commit on the same Debian snapshot gives
# byte-identical zips. Safe to run twice.
# Env: DIST_DIR (default dist), SOURCE_DATE_EPOCH (default 315532800, 1980-01-01: zip's epoch),
# LAYER_RELEASE (trixie, the default, or bookworm: the layer from the link's own Debian 12 packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
dist=$(realpath -m "${DIST_DIR:-dist}")
triple=aarch64-unknown-linux-gnu

scripts/setup/apt.sh gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross \
  patchelf zip pkg-config file
command -v rustup >/dev/null || { echo "dist: rustup is needed (https://rustup.rs)" >&2; exit 1; }
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
sysroot=$(scripts/build/sysroot.sh)
libdirs=("$sysroot/lib/aarch64-linux-gnu" "$sysroot/usr/lib/aarch64-linux-gnu")

# Loader and glibc come from the layer (AL2023's glibc 2.34 is older than Debian 12's 2.36).
# RPATH, not RUNPATH: Lambda's LD_LIBRARY_PATH puts /lib64 before /opt/lib, which beats RUNPATH.
# shellcheck disable=SC2054 # the commas belong to -Wl, arguments
rustflags=(
  -C "link-arg=--sysroot=$sysroot"
  -C link-arg=-Wl,--dynamic-linker=/opt/lib/ld-linux-aarch64.so.1
  -C link-arg=-Wl,-rpath,/opt/lib -C link-arg=-Wl,--disable-new-dtags
  --remap-path-prefix "$repo=/build" --remap-path-prefix "${CARGO_HOME:-$HOME/.cargo}=/cargo"
)
for d in "${libdirs[@]}"; do
  rustflags+=(-L "native=$d" -C "link-arg=-Wl,-rpath-link,$d")
done
cross_env=(
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  # With --target these flags reach only target code, not build scripts; \x1f-separated so
  # paths with spaces survive.
  CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${rustflags[*]}")"
  # aws-lc-sys (and any other cc-crate C code) compiles for the target with the cross gcc.
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  CFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
  CXXFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
  # Size, for the 6 MB function.zip budget (the AWS SDK dominates; pixels are libvips' job, so
  # optimising the Rust for size costs little). Only this target's build sees these.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z
  CARGO_PROFILE_RELEASE_LTO=fat
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  PKG_CONFIG_ALLOW_CROSS=1
  PKG_CONFIG_SYSROOT_DIR="$sysroot"
  PKG_CONFIG_LIBDIR="$sysroot/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig"
)
start=$(date +%s)
# One Rust build at a time on this machine (2 cores). CI insists on an up-to-date Cargo.lock.
flock /tmp/rust-build.lock env "${cross_env[@]}" \
  cargo build ${CI:+--locked} --release --target "$triple" --bin thumbs >&2
echo "dist: cross build took $(($(date +%s) - start)) s" >&2

stage="$repo/target/dist"
bin="target/$triple/release/thumbs"
rm -rf "$stage/function"
mkdir -p "$stage/function" "$dist"
aarch64-linux-gnu-strip --strip-all -o "$stage/function/bootstrap" "$bin"
# Fail early if the link settings did not take.
hdr=$(readelf -lhd "$stage/function/bootstrap")
for want in 'Machine: *AArch64' 'interpreter: /opt/lib/ld-linux-aarch64.so.1' '(RPATH) .*\[/opt/lib\]'; do
  grep -q "$want" <<<"$hdr" || { echo "dist: bootstrap lacks $want" >&2; exit 1; }
done
if grep -q '(RUNPATH)' <<<"$hdr"; then echo "dist: bootstrap has a RUNPATH" >&2; exit 1; fi

case "${LAYER_RELEASE:-trixie}" in
  bookworm)
    layer_root=$sysroot packages=$sysroot/.packages
    layer_libs=("${libdirs[@]}") plugins=() ;;
  trixie)
    # Debian 13's libheif loads its codecs as plugins (HEVC decode, AV1 decode and encode), from
    # LIBHEIF_PLUGIN_PATH=/opt/lib/libheif/plugins (set by the template and the hermetic test).
    layer_root=$(scripts/setup/libvips-root.sh trixie arm64) packages=$layer_root/.packages
    layer_libs=("$layer_root/usr/lib/aarch64-linux-gnu" "$layer_root/usr/lib")
    heif_plugins=libde265,dav1d,aomenc
    plugins=(--heif-plugins-dir "$layer_root/usr/lib/aarch64-linux-gnu/libheif/plugins"
      --heif-plugins "$heif_plugins") ;;
  *) echo "dist: LAYER_RELEASE must be trixie or bookworm" >&2; exit 2 ;;
esac
modules_dir=("$layer_root"/usr/lib/aarch64-linux-gnu/vips-modules-8.*)
layer/build-layer.sh --out "$stage/layer" --sysroot "$layer_root" \
  --search "$(IFS=:; echo "${layer_libs[*]}")" \
  --modules-dir "${modules_dir[0]}" --modules heif "${plugins[@]}" \
  --exe "$stage/function/bootstrap" "$layer_root/usr/lib/aarch64-linux-gnu/libvips.so.42"

# A fixed time, not the commit's: unrelated commits must not change the bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
layer/zip-tree.sh "$stage/function" "$dist/function.zip"
layer/zip-tree.sh "$stage/layer" "$dist/layer.zip"
cp "$packages" "$dist/layer-debian-packages.txt"
(cd "$dist" && sha256sum function.zip layer.zip >SHA256SUMS)

# Budgets: function zip 6 MB (a guard against size creep, not a Lambda limit: it was 5 MB until
# the operator commands and the S3/SQS calls of backfill, dlq and Batch Operations took it to
# 4.97 MB), layer zip 50 MB (Lambda's direct-upload limit), unzipped 150 MB (well under
# Lambda's 250 MB for function plus layers).
check_size() { # NAME BYTES LIMIT
  echo "dist: $1 $(($2 / 1024)) KiB (limit $(($3 / 1024)) KiB)" >&2
  [ "$2" -le "$3" ] || { echo "dist: $1 is over its limit" >&2; exit 1; }
}
check_size function.zip "$(stat -c %s "$dist/function.zip")" $((6 * 1000 * 1000))
check_size layer.zip "$(stat -c %s "$dist/layer.zip")" $((50 * 1000 * 1000))
check_size "unzipped function+layer" \
  "$(($(du -sb "$stage/function" | cut -f1) + $(du -sb "$stage/layer" | cut -f1)))" $((150 * 1000 * 1000))
cat "$dist/SHA256SUMS" >&2
