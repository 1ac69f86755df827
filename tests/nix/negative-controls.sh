#!/usr/bin/env bash
# Negative controls for scripts/check/nix-eval.sh: each defect the flake once had, put back into a copy
# of the repository, must make the evaluation fail with that defect's own error. A control that
# evaluates cleanly (or fails for another reason) fails this test.
# Usage: tests/nix/negative-controls.sh SRC WORKDIR   (SRC: a clean copy, as nix-eval.sh takes)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(realpath "$1") work=$(realpath -m "$2")
failed=0

# control NAME FILE SED-EXPRESSION EXPECTED-ERROR-REGEX [SHOW-REGEX: more lines of the error to print]
control() {
  local name=$1 file=$2 edit=$3 expected=$4 show=${5:-} copy="$work/$1/src"
  rm -rf "${work:?}/${name:?}"
  mkdir -p "$work/$name"
  cp -r "$src" "$copy"
  sed -i "$edit" "$copy/$file"
  if cmp -s "$src/$file" "$copy/$file"; then
    echo "negative-control $name: the edit did not apply to $file" >&2
    failed=1
    return
  fi
  if "$repo/scripts/check/nix-eval.sh" "$copy" "$work/$name/run" >"$work/$name/log" 2>&1; then
    echo "negative-control $name: NOT caught (the evaluation passed)" >&2
    failed=1
  elif grep -qE "$expected" "$work/$name/log"; then
    echo "negative-control $name: caught: $(grep -m1 -E "$expected" "$work/$name/log" | sed 's/^ *//')"
    if [ -n "$show" ]; then
      grep -E "$show" "$work/$name/log" | sed 's/^ */    /'
    fi
    grep -m1 'nix-eval: FAILED' "$work/$name/log" | sed 's/^/  /' || true
  else
    echo "negative-control $name: failed, but not with /$expected/:" >&2
    tail -5 "$work/$name/log" >&2
    failed=1
  fi
}

# 1. lib.fileset's root given the flake's `self` (a store-path string) instead of a path.
control fileset-root nix/default.nix 's|root = \.\./\.;|root = self;|' \
  'is a string-like value, but it should be a path instead'
# 2. `with p;` under a let binding of the same name: the list's `moto` is the binding itself.
control with-shadowing nix/checks.nix 's|(p: \[ p\.moto p\.flask p\.flask-cors \])|(p: with p; [ moto flask flask-cors ])|' \
  'infinite recursion encountered'
# 3a. vips 8.17's unconditional -Ddocs=true kept while introspection is off (caught against the
#     previous pin, tests/nix/nixpkgs-prev: 8.18 passes -Ddocs only with withDevDoc).
control vips-docs nix/vips.nix 's|lib\.remove docsOn old\.mesonFlags ++ \[ (lib\.mesonBool "docs" false) \]|old.mesonFlags|' \
  'API reference requires introspection'
# 3b. meson features chosen by hope rather than from what the vips takes: -Draw on 8.17.
control vips-unknown-option nix/vips.nix 's|(lib\.concatLists (lib\.attrValues present))|(lib.concatLists (lib.attrValues unused))|' \
  'Unknown options: "raw'
# 3c. On vips 8.18 (the pin), libraw nulled but its meson feature left on.
control vips-818-raw nix/vips.nix 's|libraw = \[ "raw" \];|libraw = [ ];|' \
  'Dependency "libraw" not found'
# 4. Cargo.lock read through the filtered source: not in the store under --no-build.
control cargo-lock-through-src nix/default.nix 's|crate = { cargoToml = \.\./Cargo\.toml; cargoLockFile = \.\./Cargo\.lock; inherit src; };|crate = { cargoToml = src + "/Cargo.toml"; cargoLockFile = src + "/Cargo.lock"; inherit src; };|' \
  "path '/nix/store/[a-z0-9]+-source' is not valid"
# 5. An app without meta: Nix warns, and a warning fails the check.
control app-meta nix/deploy.nix '/meta\.description/d' \
  "app 'apps\.x86_64-linux\.deploy' lacks attribute 'meta'"

# 3d. pango nulled but fontconfig left on: libvips looks fontconfig up (with pango's pangoft2)
#     whether or not pangocairo is on.
control vips-fontconfig nix/vips.nix 's|pango = \[ "pangocairo" "fontconfig" \];|pango = [ "pangocairo" ];|' \
  'Dependency "pango" and "fontconfig" not found'
# 6. Today's Cargo.lock against nixos-25.11's rustc 1.91.1 (the stand-in's release put back to it):
#    cargo refuses the crates that declare a newer rust-version.
control rustc-1.91.1 tests/nix/nixpkgs/release.nix 's|rust = "1\.95\.0";|rust = "1.91.1";|' \
  'rustc 1\.91\.1 is not supported by the following packages' 'requires rustc'
# 7. Cargo.toml's rust-version below what the locked crates need.
control rust-version-untrue Cargo.toml 's|^rust-version = .*|rust-version = "1.80"|' \
  "Cargo.toml says rust-version = '1\.80', but the locked packages need rustc"

[ "$failed" -eq 0 ] || { echo "negative controls: FAILED" >&2; exit 1; }
echo "negative controls: every defect reintroduced was caught"
