#!/usr/bin/env bash
# The Nix checks of `make test` (its last step), runnable without nixpkgs, a binary cache or a Nix install:
#   - nixpkgs-fmt --check and deadnix on the project's Nix files (not the copied nixpkgs lib)
#   - flake.lock is a well-formed v7 lock pinning the input flake.nix names
#   - files the Nix code reads from the repository exist
#   - scripts/check/nix-eval.sh: Cargo.toml's rust-version against the locked crates'; a private Nix
#     2.26 evaluates every output of the flake for all four systems from a cold store, against
#     tests/nix/nixpkgs (the real nixpkgs lib, stub packages of the pinned nixos-26.05, whose
#     rustPlatform refuses crates that need a newer rustc, as cargo does)
#   - tests/nix/negative-controls.sh: each defect the flake once had, put back, is caught
# NOT verified here: that nixpkgs' real packages build any of it (see README, "What is verified").
# shellcheck disable=SC2016 # the single-quoted ${...} are Nix and sed text, not shell
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS
scripts/setup/apt.sh python3 git shellcheck
shellcheck tests/nix/*.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
for tool in nixpkgs-fmt@1.3.0 deadnix@1.3.1; do
  if ! command -v "${tool%@*}" >/dev/null; then
    flock /tmp/rust-build.lock cargo install --locked "$tool" >&2
  fi
done

files=(flake.nix nix/*.nix tests/nix/*.nix tests/nix/nixpkgs/*.nix tests/nix/nixpkgs/pkgs/*.nix tests/nix/nixpkgs-prev/*.nix)
nixpkgs-fmt --check "${files[@]}"
# The vips stand-ins' formal arguments are the data under test (nixpkgs' exact argument lists),
# passed on whole through `@args`: deadnix checks them without lambda pattern names.
release_formals=(tests/nix/nixpkgs/pkgs/vips-8.*.nix)
others=()
for f in "${files[@]}"; do
  [[ " ${release_formals[*]} " == *" $f "* ]] || others+=("$f")
done
deadnix --fail "${others[@]}"
deadnix --fail --no-lambda-pattern-names "${release_formals[@]}"
echo "check-nix: nixpkgs-fmt and deadnix clean (${#files[@]} files)"

python3 - <<'PY'
import json, re
url = re.search(r'inputs\.nixpkgs\.url = "([^"]+)";', open("flake.nix").read()).group(1)
lock = json.load(open("flake.lock"))
assert lock["version"] == 7 and lock["root"] == "root", "flake.lock: not a v7 lock"
node = lock["nodes"][lock["nodes"]["root"]["inputs"]["nixpkgs"]]
locked, original = node["locked"], node["original"]
assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]), "flake.lock: rev"
assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"]), "flake.lock: narHash"
assert isinstance(locked["lastModified"], int), "flake.lock: lastModified"
want = "github:{owner}/{repo}/{ref}".format(**original)
assert url == want, f"flake.lock pins {want} but flake.nix asks for {url}"
print(f"check-nix: flake.lock pins {want} at {locked['rev']} (not fetched: unverifiable offline)")
PY

missing=0
while IFS= read -r path; do
  [ -e "$path" ] || { echo "check-nix: nix/ uses $path, which does not exist" >&2; missing=1; }
done < <(grep -ohE '\$\{self\}/[A-Za-z0-9_./-]+' nix/*.nix | sed 's|^${self}/||' | sort -u)
[ "$missing" -eq 0 ]

# What a user's flake would see: the tracked files (and new ones not ignored), as they are now.
work=target/nix/check
rm -rf "$work"
mkdir -p "$work/src"
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work/src"
# The crates' manifests once for every evaluation below (the negative controls' too).
flock /tmp/rust-build.lock cargo metadata --locked --format-version 1 >"$work/cargo-metadata.json"
export THUMBS_CARGO_METADATA="$work/cargo-metadata.json"
scripts/check/nix-eval.sh "$work/src" "$work/run"
tests/nix/negative-controls.sh "$work/src" "$work/negative"
echo "check-nix: passed in $((SECONDS - start)) s"
