# thumbs: S3 -> SQS -> Lambda (arm64) thumbnails with libvips. This file is only the index;
# the build logic lives in nix/.
#   nix build .#lambda   function zip (aarch64 `bootstrap`)     nix build .#layer   /opt layer zip
#   nix run .#deploy -- --stack-name NAME                         nix develop / nix flake check
# The zips are aarch64-linux builds on every system (x86_64-linux and macOS through an
# aarch64-linux builder: README, "First build"); the dev shell, `thumbs` and the checks are native.
# flake.lock pins nixos-26.05 (rustc 1.95.0, vips 8.18) at a revision and narHash seen in several
# public files; it was not fetched where this was written (no access to GitHub or a binary cache).
{
  description = "Event-driven thumbnail pipeline for AWS Lambda (arm64) with libvips";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

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
