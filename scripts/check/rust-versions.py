"""The locked crates' rust-versions, for scripts/check/nix-eval.sh.

Usage: rust-versions.py METADATA CARGO_TOML OUT
METADATA: `cargo metadata --locked --format-version 1` output. Fails unless CARGO_TOML's
rust-version is the highest rust-version among the locked (registry and git) packages, naming
them; writes OUT, {"name@version": rust-version or null} for every package, which the stand-in
nixpkgs' buildRustPackage reads as the vendored manifests' rust-versions.
"""
import json
import sys
import tomllib


def key(version):
    return tuple(int(part) for part in version.split("."))


metadata, manifest, out = sys.argv[1:]
packages = json.load(open(metadata))["packages"]
locked = [p for p in packages if p["source"] is not None and p.get("rust_version")]
highest = max(key(p["rust_version"]) for p in locked)
version = ".".join(map(str, highest))
needs = sorted(f"{p['name']}@{p['version']}" for p in locked if key(p["rust_version"]) == highest)
stated = tomllib.load(open(manifest, "rb"))["package"].get("rust-version")
if stated is None or key(stated) != highest:
    more = f" and {len(needs) - 5} more" if len(needs) > 5 else ""
    sys.exit(f"nix-eval: FAILED: Cargo.toml says rust-version = {stated!r}, but the locked packages "
             f"need rustc {version} ({', '.join(needs[:5])}{more})")
with open(out, "w") as f:
    json.dump({f"{p['name']}@{p['version']}": p.get("rust_version") for p in packages}, f, indent=0, sort_keys=True)
print(f"nix-eval: Cargo.toml's rust-version {stated} is the locked packages' highest "
      f"({len(needs)} packages at {version}, e.g. {needs[0]})")
