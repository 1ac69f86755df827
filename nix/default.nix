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

  # The deployable artifacts are aarch64 Linux whatever builds them: cross from x86_64, native on
  # aarch64. A Mac builds them as packages.aarch64-linux.* through a Linux builder.
  linux = lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux (
    let
      pkgsArm = if system == "aarch64-linux" then pkgs else pkgs.pkgsCross.aarch64-multiplatform;
      vipsLayer = pkgsArm.callPackage ./vips.nix { };
      thumbsArm = pkgsArm.callPackage ./thumbs.nix (crate // { vips = vipsLayer; forLambda = true; });
      artifact = { targetCc = pkgsArm.stdenv.cc; inherit self; thumbs = thumbsArm; };
    in
    {
      lambda = pkgs.callPackage ./lambda.nix artifact;
      layer = pkgs.callPackage ./layer.nix (artifact // { vips = vipsLayer; });
    }
  );
  zips = if pkgs.stdenv.hostPlatform.isLinux then linux else { inherit (self.packages.aarch64-linux) lambda layer; };
in
{
  packages = linux // { inherit thumbs; default = linux.lambda or thumbs; };
  apps.deploy = import ./deploy.nix { inherit pkgs self; inherit (zips) lambda layer; };
  devShells.default = import ./shell.nix { inherit pkgs; };
  checks = import ./checks.nix { inherit pkgs thumbs; };
  formatter = pkgs.nixpkgs-fmt;
}
