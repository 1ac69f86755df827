#!/usr/bin/env bash
# Unpack one Debian release's libvips with its whole library closure and its own glibc and loader.
# The root is target/libvips-roots/RELEASE (or RELEASE-ARCH), made by scripts/setup/debian-root.sh
# (the system's apt and dpkg are not touched). Safe to run twice (a stamp skips the work).
# Usage: scripts/setup/libvips-root.sh RELEASE [ARCH]   (trixie = Debian 13, sid = unstable; ARCH
# amd64, the default, or arm64: scripts/build/dist.sh builds the Lambda layer from trixie's arm64
# root); prints the root. Run a binary against an amd64 root with scripts/setup/libvips-run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
release=${1:?usage: scripts/setup/libvips-root.sh RELEASE (trixie or sid) [ARCH]}
arch=${2:-amd64}
root=target/libvips-roots/$release
[ "$arch" = amd64 ] || root+="-$arch"
# The machine's own Debian mirror (scripts/setup/debian-mirror.sh), asked for this release's suites.
mirrors=$(scripts/setup/debian-mirror.sh)
read -r debian debian_security <<<"$mirrors"
case "$release" in
  trixie) sources=("$debian trixie main" "$debian trixie-updates main" "$debian_security trixie-security main") ;;
  sid) sources=("$debian sid main") ;;
  *) echo "libvips-root: unknown release $release (trixie or sid)" >&2; exit 2 ;;
esac
# libvips with its loadable modules (heif, ...), libheif's HEVC and AV1 decoders and its AV1
# encoder (AVIF output; Debian 12 builds it into libheif, later releases split it out), plus the
# release's own glibc, whose loader runs the binary.
packages=(libvips42t64 libc6 libheif-plugin-libde265 libheif-plugin-dav1d libheif-plugin-aomenc)
scripts/setup/debian-root.sh "$root" "$arch" "${sources[@]}" -- "${packages[@]}"
