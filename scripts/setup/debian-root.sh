#!/usr/bin/env bash
# Unpack Debian packages and their dependency closure into a private root, never through the host's apt or dpkg.
# Used by build/sysroot.sh (Debian 12 arm64), setup/libvips-root.sh (Debian 13 and unstable's libvips)
# and setup/nix-install.sh (Debian 13's Nix). apt resolves against an EMPTY dpkg status file through a
# private APT_CONFIG given as a file (not `-o`: -o is applied after /etc/apt/apt.conf.d, whose hooks
# here delete apt's caches), `apt-get download` fetches the closure and `dpkg-deb -x` unpacks each
# .deb into ROOT; absolute symlinks are made relative inside ROOT, and ROOT/.packages lists the
# closure (NAME=VERSION a line). Safe to run twice: a stamp of this script and its arguments skips
# the work. Prints ROOT.
# Usage: scripts/setup/debian-root.sh ROOT ARCH 'URI SUITE COMPONENT'... -- PACKAGE...
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: scripts/setup/debian-root.sh ROOT ARCH 'URI SUITE COMPONENT'... -- PACKAGE..."
[ $# -ge 4 ] || { echo "$usage" >&2; exit 2; }
root=$(realpath -m "$1") arch=$2
shift 2
sources=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  sources+=("$1")
  shift
done
if [ $# -lt 2 ] || [ ${#sources[@]} -eq 0 ]; then echo "$usage" >&2; exit 2; fi
shift
packages=("$@")
apt_dir="$root.apt"
stamp="$root/.debian-root-$({ cat "$0"; printf '%s\n' "$arch" "${sources[@]}" -- "${packages[@]}"; } |
  sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "$root"
  exit 0
fi

scripts/setup/apt.sh apt dpkg debian-archive-keyring ca-certificates >&2
rm -rf "$root" "$apt_dir"
mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,debs,parts,sources.d,prefs.d,trusted.d,log} \
  "$root"
: >"$apt_dir/status"
# The host's keyring (bookworm's) lacks newer archive keys; apt.sh installed the newest the
# host knows, and the trixie keys it carries also sign sid here.
keyrings=/usr/share/keyrings/debian-archive-keyring.gpg
for k in /usr/share/keyrings/debian-archive-trixie-{stable,automatic,security-automatic}.gpg; do
  [ -f "$k" ] && keyrings+=",$k"
done
for s in "${sources[@]}"; do
  echo "deb [arch=$arch signed-by=$keyrings] $s"
done >"$apt_dir/sources.list"
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
// The archive reachable here may be a frozen copy whose indexes have expired;
// signatures are still checked.
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
# The machine's proxies for apt (its apt.conf.d is not read here): what reaches its own mirror.
apt-config dump | grep -E '^Acquire::[a-z]+::Proxy' >>"$apt_dir/apt.conf" || true
export APT_CONFIG="$apt_dir/apt.conf"
apt-get -qq update >&2
# "Inst NAME (VERSION ...)" lines of a simulated install are the resolved closure.
apt-get -s install "${packages[@]}" |
  awk '/^Inst /{gsub(/\(/, "", $3); print $2 "=" $3}' | sort >"$apt_dir/closure.txt"
echo "debian-root: $(wc -l <"$apt_dir/closure.txt") $arch packages into $root" >&2
(cd "$apt_dir/debs" && xargs -a ../closure.txt apt-get -qq download >&2)
for deb in "$apt_dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
# Absolute symlinks would point into the host: make them relative inside the root.
find "$root" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$(readlink "$link")")" "$link"
done
cp "$apt_dir/closure.txt" "$root/.packages"
rm -rf "$apt_dir/debs"
touch "$stamp"
echo "$root"
