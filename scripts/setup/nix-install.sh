#!/usr/bin/env bash
# A private Nix >= 2.18 for the Nix checks (scripts/check/nix-eval.sh), without a system install.
# Debian 13 (trixie)'s nix-bin 2.26 and its library closure are unpacked into target/nix/root by
# scripts/setup/debian-root.sh (the host's apt and dpkg are never touched) and run through trixie's
# own loader (Debian 12's nix is 2.8, too old for nixpkgs' lib). Safe to run twice (a stamp skips the work).
# Usage: scripts/setup/nix-install.sh   prints the path of a `nix` wrapper (target/nix/bin/nix).
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$(realpath -m target/nix)
mirrors=$(scripts/setup/debian-mirror.sh) # the machine's own Debian mirror
root=$(scripts/setup/debian-root.sh "$base/root" amd64 "${mirrors%% *} trixie main" -- nix-bin libc6)
stamp="$base/.installed-$(cat "$0" "$root/.packages" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "$base/bin/nix"
  exit 0
fi
rm -rf "${base:?}/bin" "$base"/.installed-*
mkdir -p "$base/bin"

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
