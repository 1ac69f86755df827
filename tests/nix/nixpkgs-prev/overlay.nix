# nixos-25.11, the previous pin: vips 8.17.3 (pkgs/by-name/vi/vips/package.nix there) and Rust
# 1.91.1 (pkgs/development/compilers/rust/1_91.nix). See ../nixpkgs/PROVENANCE.md.
final: prev: {
  vips = final.callPackage ./base/pkgs/vips-8.17.nix { };
  rustc = prev.rustc.overrideAttrs { version = "1.91.1"; };
  cargo = prev.cargo.overrideAttrs { version = "1.91.1"; };
}
