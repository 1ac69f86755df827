#!/usr/bin/env bash
# A private Debian 12 arm64 sysroot (libvips and its closure, glibc) under target/, for make dist's cross link.
# Never through dpkg: the host's dpkg would fight arm64 libvips (not Multi-Arch); scripts/setup/debian-root.sh
# resolves the closure with arm64 as the only architecture and unpacks the .debs. Safe to run twice
# (a stamp skips the work).
# Usage: scripts/build/sysroot.sh [DIR]   (default target/aarch64-sysroot); prints DIR when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The machine's own Debian mirror (scripts/setup/debian-mirror.sh), asked for bookworm's suites.
mirrors=$(scripts/setup/debian-mirror.sh)
read -r debian debian_security <<<"$mirrors"
# What the link and the layer need: libvips (+ its modules) with its .pc closure, glibc's
# crt files and linker scripts, libgcc_s.
scripts/setup/debian-root.sh "${1:-target/aarch64-sysroot}" arm64 \
  "$debian bookworm main" "$debian bookworm-updates main" "$debian_security bookworm-security main" \
  -- libvips-dev libvips42 libc6-dev libgcc-s1
