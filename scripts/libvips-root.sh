#!/usr/bin/env bash
# Unpack one Debian release's libvips with its whole library closure and its own glibc and
# loader into target/libvips-roots/RELEASE, without touching the system's apt or dpkg: apt
# resolves against an EMPTY dpkg status file through a private APT_CONFIG (given as a file, not
# -o: -o is applied after /etc/apt/apt.conf.d, whose hooks here delete apt's caches), downloads
# the .debs and `dpkg-deb -x` unpacks each one. Safe to run twice (a stamp skips the work).
# Usage: scripts/libvips-root.sh RELEASE [ARCH]   (trixie = Debian 13, sid = unstable; ARCH amd64,
# the default, or arm64: scripts/dist.sh builds the Lambda layer from trixie's arm64 root);
# prints the root. Run a binary against an amd64 root with scripts/libvips-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:?usage: scripts/libvips-root.sh RELEASE (trixie or sid) [ARCH]}
arch=${2:-amd64}
case "$release" in
  trixie) suites=("trixie main" "trixie-updates main") security="trixie-security main" ;;
  sid) suites=("sid main") security="" ;;
  *) echo "libvips-root: unknown release $release (trixie or sid)" >&2; exit 2 ;;
esac
root=$(realpath -m "target/libvips-roots/$release")
[ "$arch" = amd64 ] || root+="-$arch"
apt_dir="$root.apt"
# libvips with its loadable modules (heif, ...), libheif's HEVC and AV1 decoders and its AV1
# encoder (AVIF output; Debian 12 builds it into libheif, later releases split it out), plus the
# release's own glibc, whose loader runs the binary.
packages=(libvips42t64 libc6 libheif-plugin-libde265 libheif-plugin-dav1d libheif-plugin-aomenc)
stamp="$root/.root-$({ cat "$0"; echo "$arch"; } | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "$root"
  exit 0
fi

scripts/apt.sh apt dpkg debian-archive-keyring ca-certificates >&2
rm -rf "$root" "$apt_dir"
mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,parts,sources.d,prefs.d,trusted.d,log} \
  "$root"
: >"$apt_dir/status"
# The host's keyring (bookworm's) lacks newer archive keys; apt.sh installed the newest the
# host knows, and the trixie keys it carries also sign sid here.
keyrings=/usr/share/keyrings/debian-archive-keyring.gpg
for k in /usr/share/keyrings/debian-archive-trixie-{stable,automatic,security-automatic}.gpg; do
  [ -f "$k" ] && keyrings+=",$k"
done
{
  for s in "${suites[@]}"; do
    echo "deb [arch=$arch signed-by=$keyrings] http://deb.debian.org/debian $s"
  done
  [ -z "$security" ] ||
    echo "deb [arch=$arch signed-by=$keyrings] http://deb.debian.org/debian-security $security"
} >"$apt_dir/sources.list"
cat >"$apt_dir/apt.conf" <<EOF
Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "$apt_dir/parts";
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/sources.d";
Dir::Etc::Preferences "$apt_dir/preferences";
Dir::Etc::PreferencesParts "$apt_dir/prefs.d";
Dir::Etc::Trusted "$apt_dir/trusted.gpg";
Dir::Etc::TrustedParts "$apt_dir/trusted.d";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
Dir::Log "$apt_dir/log";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Debug::NoLocking "true";
// The archive reachable here may be a frozen copy whose unstable index has expired;
// signatures are still checked.
Acquire::Check-Valid-Until "false";
EOF
export APT_CONFIG="$apt_dir/apt.conf"
apt-get -qq update >&2
apt-get -qq install --download-only -y "${packages[@]}" >&2
n=0
for deb in "$apt_dir"/cache/archives/*.deb; do
  dpkg-deb -x "$deb" "$root"
  n=$((n + 1))
done
# Absolute symlinks would point into the host: make them relative inside the root.
find "$root" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$(readlink "$link")")" "$link"
done
(cd "$apt_dir/cache/archives" && ls -- *.deb) >"$root/.packages"
rm -rf "$apt_dir/cache/archives"
echo "libvips-root: $release $arch, $n packages" >&2
touch "$stamp"
echo "$root"
