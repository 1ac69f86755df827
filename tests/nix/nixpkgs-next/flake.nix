# The stand-in nixpkgs with the next vips (8.18: libraw, libultrahdr and withDevDoc arguments,
# raw and uhdr meson features), to check that nix/vips.nix picks its flags from what the vips it
# gets takes. scripts/check/check-nix.sh copies ../nixpkgs beside this file as ./base.
{
  description = "Stand-in nixpkgs with vips 8.18";

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
