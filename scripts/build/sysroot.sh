#!/usr/bin/env bash
# Build a private Debian 12 arm64 sysroot (libvips and its closure, glibc) under target/.
# Never through dpkg: the host's dpkg would fight arm64 libvips (not Multi-Arch). apt resolves
# against an empty status file with arm64 as the only architecture, `apt-get download` fetches
# the .debs and `dpkg-deb -x` unpacks them. Safe to run twice (a stamp skips the work).
# Usage: scripts/build/sysroot.sh [DIR]   (default target/aarch64-sysroot); prints DIR when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(realpath -m "${1:-target/aarch64-sysroot}")
apt_dir="$root.apt"
# What the link and the layer need: libvips (+ its modules) with its .pc closure, glibc's
# crt files and linker scripts, libgcc_s.
packages=(libvips-dev libvips42 libc6-dev libgcc-s1)
stamp="$root/.sysroot-$(sha256sum <"$0" | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "$root"
  exit 0
fi

scripts/setup/apt.sh apt dpkg debian-archive-keyring ca-certificates >&2
rm -rf "$root" "$apt_dir"
mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,debs,prefs.d,sources.d} "$root"
: >"$apt_dir/status"
cat >"$apt_dir/sources.list" <<'EOF'
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
apt_opts=(
  -o APT::Architecture=arm64 -o APT::Architectures=arm64
  -o Dir::State::Status="$apt_dir/status" -o Dir::State::Lists="$apt_dir/lists"
  -o Dir::Cache="$apt_dir/cache" -o Dir::Etc::SourceList="$apt_dir/sources.list"
  -o Dir::Etc::SourceParts="$apt_dir/sources.d" -o Dir::Etc::PreferencesParts="$apt_dir/prefs.d"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root
)
apt-get "${apt_opts[@]}" -qq update >&2
# "Inst NAME (VERSION ...)" lines of a simulated install are the resolved closure.
apt-get "${apt_opts[@]}" -s install --no-install-recommends "${packages[@]}" |
  awk '/^Inst /{gsub(/\(/, "", $3); print $2 "=" $3}' | sort >"$apt_dir/closure.txt"
echo "sysroot: $(wc -l <"$apt_dir/closure.txt") arm64 packages" >&2
(cd "$apt_dir/debs" && xargs -a ../closure.txt apt-get "${apt_opts[@]}" -qq download >&2)
for deb in "$apt_dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
# Absolute symlinks would point into the host: make them relative inside the sysroot.
find "$root" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$(readlink "$link")")" "$link"
done
cp "$apt_dir/closure.txt" "$root/.packages"
touch "$stamp"
echo "$root"
