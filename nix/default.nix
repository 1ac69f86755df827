# Everything the flake exposes for one build system; flake.nix is only the index.
{ nixpkgs, system, self }:
let
  pkgs = import nixpkgs { inherit system; };
  inherit (pkgs) lib;
  # A path value (a flake's `self` is a store-path string, which lib.fileset refuses).
  src = import ./source.nix { inherit lib; root = ../.; };
  # Read from the flake's own copy, not through `src`: evaluation must not need `src` built.
  crate = { cargoToml = ../Cargo.toml; cargoLockFile = ../Cargo.lock; inherit src; };

  # Development and checks run natively against nixpkgs' own (binary-cached) vips.
  thumbs = pkgs.callPackage ./thumbs.nix crate;

  # The deployable artifacts are aarch64-linux builds from nixpkgs' native aarch64-linux set on
  # every system: its rustc, glib, libheif, glibc... are in the binary cache, so only the lean
  # libvips, the crate and the zips are built (README, "First build"). x86_64-linux and the Macs
  # build the same derivations through an aarch64-linux builder (remote, a VM, or qemu binfmt).
  zips =
    if system == "aarch64-linux" then
      let
        vipsLayer = pkgs.callPackage ./vips.nix { };
        thumbsArm = pkgs.callPackage ./thumbs.nix (crate // { vips = vipsLayer; forLambda = true; });
        artifact = { targetCc = pkgs.stdenv.cc; inherit self; thumbs = thumbsArm; };
      in
      {
        lambda = pkgs.callPackage ./lambda.nix artifact;
        layer = pkgs.callPackage ./layer.nix (artifact // { vips = vipsLayer; });
      }
    else { inherit (self.packages.aarch64-linux) lambda layer; };
  linux = lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux zips;
in
{
  packages = linux // { inherit thumbs; default = linux.lambda or thumbs; };
  apps.deploy = import ./deploy.nix { inherit pkgs self; inherit (zips) lambda layer; };
  devShells.default = import ./shell.nix { inherit pkgs; };
  checks = import ./checks.nix { inherit pkgs thumbs; };
  formatter = pkgs.nixpkgs-fmt;
}
