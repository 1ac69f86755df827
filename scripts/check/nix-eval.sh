#!/usr/bin/env bash
# Evaluate every output of the flake in SRC (a plain copy of the repository) from a cold store.
# With a private Nix (scripts/setup/nix-install.sh), against SRC's stand-in nixpkgs (tests/nix/nixpkgs: the real
# nixpkgs lib at 25.11 and stub packages of nixos-26.05, the pin). Fails on the first check that fails.
#   0. the crates' rust-versions (cargo metadata --locked): Cargo.toml's rust-version is the highest
#      of the locked packages', and they go to the stand-in, whose buildRustPackage refuses, as cargo
#      does, a lock that asks for a newer rustc than the release's
#   1. nix flake check --no-build --all-systems, with no warning
#   2. nix eval: the drvPath of every package, dev shell, check and formatter, every app's program
#   3. the previous pin (tests/nix/nixpkgs-prev: vips 8.17.3, rustc 1.91.1): the lean libvips still
#      configures, and the Lambda build is refused with cargo's error naming the crates
#   4. what `nix develop` holds, compared with the README's list
#   5. the libraries the Nix layer carries
# Usage: scripts/check/nix-eval.sh SRC WORKDIR   (WORKDIR is emptied first: a fresh store and caches)
# THUMBS_CARGO_METADATA: a `cargo metadata --locked --format-version 1` of SRC's Cargo.lock, made
# once by the caller (scripts/check/check-nix.sh) for many runs; made here when unset.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(realpath "$1") work=$(realpath -m "$2")
nix=$("$repo/scripts/setup/nix-install.sh")
rm -rf "$work"
mkdir -p "$work"/{etc,cache,config,state,data}
cp -r "$src/tests/nix/nixpkgs" "$work/nixpkgs"
cp -r "$src/tests/nix/nixpkgs-prev" "$work/nixpkgs-prev"
say() { echo "nix-eval: $*"; }

metadata=${THUMBS_CARGO_METADATA:-$work/cargo-metadata.json}
if [ -z "${THUMBS_CARGO_METADATA:-}" ]; then
  flock /tmp/rust-build.lock cargo metadata --locked --format-version 1 --manifest-path "$src/Cargo.toml" >"$metadata"
fi
python3 "$repo/scripts/check/rust-versions.py" "$metadata" "$src/Cargo.toml" "$work/nixpkgs/vendored-crates.json"
cp -r "$work/nixpkgs" "$work/nixpkgs-prev/base"
export NIX_CONF_DIR="$work/etc" NIX_USER_CONF_FILES="" XDG_CACHE_HOME="$work/cache" \
  XDG_CONFIG_HOME="$work/config" XDG_CONFIG_DIRS="$work/config" XDG_STATE_HOME="$work/state" XDG_DATA_HOME="$work/data"
export NIX_CONFIG="experimental-features = nix-command flakes
substituters =
sandbox = false
build-users-group =
warn-dirty = false
allow-import-from-derivation = false"
flake="path:$src"
# Nix's stderr without the lock-override chatter. Filtered after nix exits, not through a process
# substitution: that one is not waited for, so a caller reading the redirected stderr (the error
# text, the warnings) could read it before the filter had written it.
run() { with "$work/nixpkgs" "$@"; }
with() {
  local status=0 standin=$1
  shift
  "$nix" --store "$work/store" "$@" --override-input nixpkgs "path:$standin" 2>"$work/nix.stderr" || status=$?
  grep -v -e 'not writing modified lock file' -e "Updated input 'nixpkgs'" -e "^    '" -e '^  → ' "$work/nix.stderr" >&2 || true
  return "$status"
}
run flake check --no-build --all-systems "$flake" 2>"$work/flake-check.log" || {
  cat "$work/flake-check.log" >&2
  say "FAILED: nix flake check --no-build" >&2
  exit 1
}
if grep '^warning:' "$work/flake-check.log" >&2; then
  say "FAILED: nix flake check --no-build warns (above)" >&2
  exit 1
fi
say "nix flake check --no-build --all-systems: passed, no warnings ($(grep -c 'derivation evaluated to' "$work/flake-check.log") derivations)"

drvs='builtins.mapAttrs (_: builtins.mapAttrs (_: d: d.drvPath))'
for output in packages devShells checks; do
  run eval --json "$flake#$output" --apply "$drvs" >"$work/$output.json"
done
run eval --json "$flake#apps" --apply 'builtins.mapAttrs (_: builtins.mapAttrs (_: a: a.program))' >"$work/apps.json"
run eval --json "$flake#formatter" --apply 'builtins.mapAttrs (_: d: d.drvPath)' >"$work/formatter.json"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
out = {name: json.load(open(f"{work}/{name}.json")) for name in ["packages", "devShells", "checks", "apps", "formatter"]}
linux, darwin = ["aarch64-linux", "x86_64-linux"], ["aarch64-darwin", "x86_64-darwin"]
for name, per_system in out.items():
    assert sorted(per_system) == sorted(linux + darwin), f"{name}: systems {sorted(per_system)}"
for system in linux + darwin:
    want = ["default", "thumbs"] + (["lambda", "layer"] if system in linux else [])
    assert sorted(out["packages"][system]) == sorted(want), f"packages.{system}: {sorted(out['packages'][system])}"
    assert sorted(out["apps"][system]) == ["deploy"], f"apps.{system}"
    assert sorted(out["devShells"][system]) == ["default"], f"devShells.{system}"
    assert sorted(out["checks"][system]) == ["clippy", "fmt", "tests", "thumbs"], f"checks.{system}"
count = sum(len(v) if isinstance(v, dict) else 1 for per_system in out.values() for v in per_system.values())
print(f"nix-eval: nix eval of {count} outputs on {len(linux + darwin)} systems: every drvPath and app program evaluated")
print(f"nix-eval:   packages.x86_64-linux.layer = {out['packages']['x86_64-linux']['layer']}")
PY

flags='l: builtins.concatStringsSep " " l'
release=$(run eval --raw "$flake#packages.aarch64-linux.layer.vips.version")
say "lean vips $release (nixos-26.05) configures with: $(run eval --raw "$flake#packages.aarch64-linux.layer.vips.mesonFlags" --apply "$flags")"
prev="$work/nixpkgs-prev"
for system in x86_64-linux aarch64-linux; do
  with "$prev" eval --raw "$flake#packages.$system.layer.vips.drvPath" >/dev/null 2>"$work/prev.log" || {
    cat "$work/prev.log" >&2
    say "FAILED: the lean vips against the previous pin's vips 8.17.3 ($system)" >&2
    exit 1
  }
done
say "lean vips 8.17.3 (nixos-25.11, the previous pin) configures with: $(with "$prev" eval --raw "$flake#packages.aarch64-linux.layer.vips.mesonFlags" --apply "$flags")"
# The version check's own control: today's Cargo.lock with the previous pin's rustc 1.91.1.
if with "$prev" eval --raw "$flake#packages.aarch64-linux.lambda.drvPath" >/dev/null 2>"$work/prev-rustc.log"; then
  say "FAILED: the Lambda build evaluates with nixos-25.11's rustc 1.91.1, which Cargo.lock's crates refuse" >&2
  exit 1
fi
grep -q 'rustc 1.91.1 is not supported by the following packages' "$work/prev-rustc.log" || {
  cat "$work/prev-rustc.log" >&2
  say "FAILED: the Lambda build against rustc 1.91.1 failed without cargo's rust-version error" >&2
  exit 1
}
refused=$(grep -o '[A-Za-z0-9_-]*@[0-9][0-9.]* requires rustc [0-9.]*' "$work/prev-rustc.log" | sed 's/ requires rustc / needs /')
say "nixos-25.11's rustc 1.91.1 is refused, as cargo would: $(wc -l <<<"$refused") packages: $(paste -sd, <<<"$refused" | sed 's/,/, /g')"

names='ds: let n = map (d: d.pname or d.name); in builtins.concatStringsSep " " (n ds.nativeBuildInputs ++ [ "|" ] ++ n ds.buildInputs)'
shell=$(run eval --raw "$flake#devShells.x86_64-linux.default" --apply "$names")
for system in aarch64-linux x86_64-darwin aarch64-darwin; do
  other=$(run eval --raw "$flake#devShells.$system.default" --apply "$names")
  [ "$other" = "$shell" ] || { say "FAILED: the dev shell differs on $system: $other" >&2; exit 1; }
done
say "nix develop holds (nativeBuildInputs | buildInputs, every system): $shell"
readme=$(sed -n 's/^<!-- nix develop: \(.*\) -->$/\1/p' "$src/README.md")
[ "$readme" = "$shell" ] || { say "FAILED: README's dev shell list ($readme) is not what the flake gives" >&2; exit 1; }
say "README's dev shell list matches"

libs=$(run eval --impure --raw "$flake#packages.aarch64-linux.layer" \
  --apply "layer: builtins.concatStringsSep \" \" (import $src/tests/nix/layer-libraries.nix layer)")
say "the Nix layer carries ($(wc -w <<<"$libs") libraries, stand-in inputs): $libs"
say "passed"
