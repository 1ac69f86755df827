#!/usr/bin/env bash
# Evaluate every output of the flake in SRC (a plain copy of the repository) from a cold store.
# With a private Nix (scripts/setup/nix-install.sh), against the project's stand-in nixpkgs (tests/nix/nixpkgs: the
# real nixpkgs lib at 25.11 and stub packages). Fails on the first output that does not evaluate.
#   1. nix flake check --no-build --all-systems, with no warning
#   2. nix eval: the drvPath of every package, dev shell, check and formatter, every app's program
#   3. the lean libvips against vips 8.18's arguments and meson options (tests/nix/nixpkgs-next)
#   4. what `nix develop` holds, compared with the README's list
#   5. the libraries the Nix layer carries
# Usage: scripts/check/nix-eval.sh SRC WORKDIR   (WORKDIR is emptied first: a fresh store and caches)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(realpath "$1") work=$(realpath -m "$2")
nix=$("$repo/scripts/setup/nix-install.sh")
rm -rf "$work"
mkdir -p "$work"/{etc,cache,config,state,data}
cp -r "$repo/tests/nix/nixpkgs" "$work/nixpkgs"
cp -r "$repo/tests/nix/nixpkgs-next" "$work/nixpkgs-next"
cp -r "$repo/tests/nix/nixpkgs" "$work/nixpkgs-next/base"
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
run() {
  local status=0
  "$nix" --store "$work/store" "$@" --override-input nixpkgs "path:$work/nixpkgs" 2>"$work/nix.stderr" || status=$?
  grep -v -e 'not writing modified lock file' -e "Updated input 'nixpkgs'" -e "^    '" -e '^  → ' "$work/nix.stderr" >&2 || true
  return "$status"
}
say() { echo "nix-eval: $*"; }

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
say "lean vips 8.17.3 (nixos-25.11) configures with: $(run eval --raw "$flake#packages.aarch64-linux.layer.vips.mesonFlags" --apply "$flags")"
for system in x86_64-linux aarch64-linux; do
  "$nix" --store "$work/store" eval --raw "$flake#packages.$system.layer.drvPath" \
    --override-input nixpkgs "path:$work/nixpkgs-next" 2>"$work/next.log" >/dev/null || {
    cat "$work/next.log" >&2
    say "FAILED: the layer against vips 8.18 ($system)" >&2
    exit 1
  }
done
say "lean vips 8.18 (next release's arguments) configures with: $("$nix" --store "$work/store" eval --raw "$flake#packages.aarch64-linux.layer.vips.mesonFlags" --apply "$flags" --override-input nixpkgs "path:$work/nixpkgs-next" 2>/dev/null)"

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
