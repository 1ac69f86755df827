# The stand-in nixpkgs as nixos-25.11 (the previous pin) had it: vips 8.17.3, whose meson files
# know no `raw` or `uhdr` and whose package passes -Ddocs=true on Linux, and Rust 1.91.1. Checks
# that nix/vips.nix still picks right flags for the older vips, and that the version check refuses
# today's Cargo.lock with that rustc. scripts/check/nix-eval.sh copies ../nixpkgs here as ./base.
{
  description = "Stand-in nixpkgs as nixos-25.11: vips 8.17.3, Rust 1.91.1";

  outputs = _:
    let
      lib = import ./base/lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ]
        (system: import ./. { inherit system; });
    };
}
