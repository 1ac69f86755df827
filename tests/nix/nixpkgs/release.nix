# What the stand-in says about the release it models, nixos-26.05 (the flake's pin), each fact with
# its upstream file in ./PROVENANCE.md. scripts/check/nix-eval.sh reads nothing else from here: the
# packages in ./pkgs take their versions from this file, so a negative control can swap a release.
{
  release = "26.05";
  # pkgs/development/compilers/rust/1_95.nix: rustcVersion = "1.95.0" (26.05 branched after the
  # 1.95.0 update, nixpkgs#510674, and release branches keep their Rust: nixpkgs#524640).
  rust = "1.95.0";
  # pkgs/by-name/vi/vips/package.nix: 8.18.2 on master before the branch-off (nixpkgs#505481).
  vips = "8.18.2";
}
