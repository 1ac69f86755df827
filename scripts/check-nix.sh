#!/usr/bin/env bash
# Offline checks of flake.nix, flake.lock and nix/: what can be verified without nixpkgs
# (which cannot be fetched here; Debian 12's Nix 2.8 could not evaluate it anyway).
#   - every .nix file parses (nix-instantiate --parse)
#   - nixpkgs-fmt --check and deadnix (no unused bindings)
#   - flake.lock is a well-formed v7 lock pinning the input flake.nix names
#   - the flake's output tree has the promised names (evaluated against a stub nixpkgs.lib)
#   - files the Nix code reads from the repository exist
# NOT verified here: that nixpkgs evaluates or builds any of it (see nix/ and the report).
# shellcheck disable=SC2016 # the single-quoted ${...} are Nix and sed text, not shell
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt.sh nix-bin python3
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" NIX_CONFIG="build-users-group ="
for tool in nixpkgs-fmt@1.3.0 deadnix@1.3.1; do
  if ! command -v "${tool%@*}" >/dev/null; then
    flock /tmp/rust-build.lock cargo install --locked "$tool" >&2
  fi
done

files=(flake.nix nix/*.nix)
for f in "${files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null
done
echo "check-nix: ${#files[@]} files parse"
nixpkgs-fmt --check "${files[@]}"
deadnix --fail "${files[@]}"
echo "check-nix: nixpkgs-fmt and deadnix clean"

url=$(nix-instantiate --eval --json -E '(import ./flake.nix).inputs.nixpkgs.url')
python3 - "$url" <<'EOF'
import json, re, sys
url = json.loads(sys.argv[1])
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
EOF

# Evaluate the output tree's names with a stub nixpkgs that has only the two lib functions the
# index uses; the package set itself stays an unevaluated thunk.
names=$(nix-instantiate --eval --strict --json -E '
  let
    stub = {
      lib = {
        genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
        inherit (builtins) mapAttrs;
      };
    };
    out = (import ./flake.nix).outputs { self = ./.; nixpkgs = stub; };
    sys = "x86_64-linux";
  in {
    top = builtins.attrNames out;
    systems = builtins.attrNames out.packages;
    packages = builtins.attrNames out.packages.${sys};
    apps = builtins.attrNames out.apps.${sys};
    devShells = builtins.attrNames out.devShells.${sys};
  }')
python3 - "$names" <<'EOF'
import json, sys
got = json.loads(sys.argv[1])
want = {
    "top": ["apps", "checks", "devShells", "formatter", "packages"],
    "systems": ["aarch64-linux", "x86_64-linux"],
    "packages": ["default", "lambda", "layer", "thumbs"],
    "apps": ["deploy"],
    "devShells": ["default"],
}
assert got == want, f"flake outputs {got} != {want}"
print(f"check-nix: flake outputs {got}")
EOF

missing=0
while IFS= read -r path; do
  [ -e "$path" ] || { echo "check-nix: nix/ uses $path, which does not exist" >&2; missing=1; }
done < <(grep -ohE '\$\{self\}/[A-Za-z0-9_./-]+' nix/*.nix | sed 's|^${self}/||' | sort -u)
[ "$missing" -eq 0 ]
echo "check-nix: passed (parse, format, dead code, lock shape, output names, referenced files)"
