# thumbs: S3 -> SQS -> Lambda (arm64) thumbnails with libvips. This file is only the index;
# the build logic lives in nix/.
#   nix build .#lambda   function zip (aarch64 `bootstrap`)     nix build .#layer   /opt layer zip
#   nix run .#deploy -- --stack-name NAME                         nix develop / nix flake check
# On macOS: the dev shell, the native `thumbs` and the checks; the Lambda zips are Linux builds
# (`nix build .#packages.aarch64-linux.lambda` through a Linux builder, see README).
# flake.lock pins nixos-25.11 at a revision seen in public lock files; it was not fetched or
# verified where this was written (no access to GitHub or a binary cache there).
{
  description = "Event-driven thumbnail pipeline for AWS Lambda (arm64) with libvips";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      perSystem = nixpkgs.lib.genAttrs systems (system: import ./nix { inherit nixpkgs system self; });
      pick = name: nixpkgs.lib.mapAttrs (_: outputs: outputs.${name}) perSystem;
    in
    {
      packages = pick "packages";
      apps = pick "apps";
      devShells = pick "devShells";
      checks = pick "checks";
      formatter = pick "formatter";
    };
}
