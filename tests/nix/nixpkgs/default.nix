# `import nixpkgs { system; overlays; }` as nixpkgs takes it; pkgsCross.aarch64-multiplatform and
# buildPackages as in nixpkgs (the cross set's build tools come from the native set).
{ system ? builtins.currentSystem
, localSystem ? { inherit system; }
, overlays ? [ ]
, config ? { }
}:
assert config == { } || throw "the stand-in nixpkgs takes no config";
let
  lib = import ./lib;
  buildPlatform = lib.systems.elaborate localSystem;
  packageSet = { hostPlatform, buildPackages ? null }:
    let
      base = final: import ./pkgs {
        inherit lib final buildPlatform hostPlatform;
        buildPackages = if buildPackages == null then final else buildPackages;
        pkgsCross = {
          aarch64-multiplatform = packageSet {
            hostPlatform = lib.systems.elaborate lib.systems.examples.aarch64-multiplatform;
            buildPackages = native;
          };
        };
      };
    in
    lib.fix (lib.foldl' (f: overlay: lib.extends overlay f) base overlays);
  native = packageSet { hostPlatform = buildPlatform; };
in
native
