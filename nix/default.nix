# Everything the flake exposes for one build system; flake.nix is only the index.
{ nixpkgs, system, self }:
let
  pkgs = import nixpkgs { inherit system; };
  inherit (pkgs) lib;
  # The deployable artifacts are aarch64 whatever builds them: cross from x86_64, native on aarch64.
  pkgsArm = if system == "aarch64-linux" then pkgs else pkgs.pkgsCross.aarch64-multiplatform;
  src = import ./source.nix { inherit lib; root = self; };

  vipsLayer = pkgsArm.callPackage ./vips.nix { };
  thumbsArm = pkgsArm.callPackage ./thumbs.nix { inherit src; vips = vipsLayer; forLambda = true; };
  artifact = { targetCc = pkgsArm.stdenv.cc; inherit self; };
  lambda = pkgs.callPackage ./lambda.nix (artifact // { thumbs = thumbsArm; });
  layer = pkgs.callPackage ./layer.nix (artifact // { thumbs = thumbsArm; vips = vipsLayer; });

  # Development and checks run natively against nixpkgs' own (binary-cached) vips.
  thumbs = pkgs.callPackage ./thumbs.nix { inherit src; };
in
{
  packages = { inherit lambda layer thumbs; default = lambda; };
  apps.deploy = import ./deploy.nix { inherit pkgs self lambda layer; };
  devShells.default = import ./shell.nix { inherit pkgs; };
  checks = import ./checks.nix { inherit pkgs thumbs; };
  formatter = pkgs.nixpkgs-fmt;
}
