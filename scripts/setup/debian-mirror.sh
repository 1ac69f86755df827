#!/usr/bin/env bash
# Where this machine gets its Debian packages, for scripts/setup/debian-root.sh's private roots of other
# releases (bookworm arm64, trixie, sid): prints "ARCHIVE_URI SECURITY_URI" on one line.
# Read from the machine's own apt configuration (sources.list and sources.list.d, one-line and deb822
# .sources alike, as `apt-get indextargets` lists them, downloaded or not): the entry for this release's suite (or its
# -updates) is the archive, the one for its -security suite the security archive. Other releases' suites
# are then asked of the same URIs: a Debian mirror (or a dated snapshot archive) carries them all.
# Override, for a mirror or proxy apt does not know about: DEBIAN_MIRROR=URI, DEBIAN_SECURITY_MIRROR=URI.
# DEBIAN_CODENAME overrides the release read from /etc/os-release (VERSION_CODENAME).
set -euo pipefail
codename=${DEBIAN_CODENAME:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
if [ -z "${DEBIAN_MIRROR:-}" ] || [ -z "${DEBIAN_SECURITY_MIRROR:-}" ]; then
  [ -n "$codename" ] || { echo "debian-mirror: not a Debian release (no VERSION_CODENAME in /etc/os-release): set DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR" >&2; exit 1; }
  # shellcheck disable=SC2016 # $(...) are apt's format fields, not the shell's
  targets=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | sort -u)
fi
pick() { # SUITE_REGEX: the URI (without its trailing /) of the first source of such a suite
  awk -v re="$1" '$2 ~ re { sub(/\/$/, "", $1); print $1; exit }' <<<"$targets"
}
archive=${DEBIAN_MIRROR:-$(pick "^$codename(-updates)?\$")}
security=${DEBIAN_SECURITY_MIRROR:-$(pick "^$codename-security\$")}
[ -n "$archive" ] || { echo "debian-mirror: apt has no source for $codename (see /etc/apt/sources.list*): set DEBIAN_MIRROR" >&2; exit 1; }
[ -n "$security" ] || { echo "debian-mirror: apt has no source for $codename-security (see /etc/apt/sources.list*): set DEBIAN_SECURITY_MIRROR" >&2; exit 1; }
echo "${archive%/} ${security%/}"
