#!/usr/bin/env bash
# Install Debian packages that are missing; a no-op when all are present (safe to run twice).
set -euo pipefail
# Inside `nix develop` the dev shell provides the tools: leave the host's packages alone.
if [ -n "${IN_NIX_SHELL:-}" ]; then exit 0; fi
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
