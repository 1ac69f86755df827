#!/usr/bin/env bash
# A private Nix >= 2.18 for the checks: Debian 13 (trixie)'s nix-bin 2.26 and its library closure
# unpacked from .debs into target/nix/root and run through trixie's own loader (Debian 12's nix is
# 2.8, too old for nixpkgs' lib). The host's apt and dpkg are never touched: apt resolves against an
# EMPTY status file under a private APT_CONFIG (not `-o`: the host's apt.conf.d hooks are read
# before `-o` applies and delete apt's caches). Safe to run twice (a stamp skips the work).
# Usage: scripts/setup/nix-install.sh   prints the path of a `nix` wrapper (target/nix/bin/nix).
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$(realpath -m target/nix)
root="$base/root" apt_dir="$base/apt"
stamp="$base/.installed-$(sha256sum <"$0" | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "$base/bin/nix"
  exit 0
fi

scripts/setup/apt.sh apt dpkg debian-archive-keyring ca-certificates >&2
rm -rf "${root:?}" "${apt_dir:?}" "${base:?}/bin"
mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,debs,parts,prefs.d,sources.d,trusted.d,log} "$root" "$base/bin"
: >"$apt_dir/status"
cat >"$apt_dir/sources.list" <<'LIST'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
LIST
cat >"$apt_dir/apt.conf" <<CONF
Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "$apt_dir/parts";
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/sources.d";
Dir::Etc::Preferences "$apt_dir/preferences";
Dir::Etc::PreferencesParts "$apt_dir/prefs.d";
Dir::Etc::TrustedParts "/usr/share/keyrings";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
Dir::Log "$apt_dir/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
Debug::NoLocking "true";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$apt_dir/apt.conf"
apt-get -qq update >&2
# "Inst NAME (VERSION ...)" lines of a simulated install are the resolved closure.
apt-get -s install nix-bin libc6 |
  awk '/^Inst /{gsub(/\(/, "", $3); print $2 "=" $3}' | sort >"$apt_dir/closure.txt"
echo "nix-install: $(wc -l <"$apt_dir/closure.txt") trixie packages" >&2
(cd "$apt_dir/debs" && xargs -a ../closure.txt apt-get -qq download >&2)
for deb in "$apt_dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
cp "$apt_dir/closure.txt" "$root/.packages"

# The wrapper: trixie's loader and libraries only (--inhibit-cache: never the host's ld.so.cache).
# argv0 picks nix's personality (nix, nix-instantiate, ...). Store, state and caches are chosen
# by the caller (scripts/check/check-nix.sh) through NIX_* and XDG_* variables.
lib="$root/usr/lib/x86_64-linux-gnu"
for tool in nix nix-instantiate; do
  cat >"$base/bin/$tool" <<WRAP
#!/bin/sh
exec "$lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$lib" --argv0 $tool "$root/usr/bin/nix" "\$@"
WRAP
  chmod +x "$base/bin/$tool"
done
"$base/bin/nix" --version >&2
touch "$stamp"
echo "$base/bin/nix"
