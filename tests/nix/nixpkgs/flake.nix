# thumbs' stand-in for nixpkgs (docs/nix.md): nixpkgs' real `lib` at the 25.11 branch point and
# stubs of nixos-26.05's packages (./release.nix, ./PROVENANCE.md), for evaluating the flake where
# nixpkgs cannot be fetched.
{
  description = "Stand-in nixpkgs: the real lib (25.11) with stubs of nixos-26.05";

  outputs = _:
    let
      lib = import ./lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ]
        (system: import ./. { inherit system; });
    };
}
