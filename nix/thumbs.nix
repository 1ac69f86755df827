# The thumbs binary for the host platform of the package set that calls this (aarch64 for the
# Lambda artifacts, the build machine for checks).
{ lib, rustPlatform, pkg-config, vips, glib, src, doCheck ? false }:
rustPlatform.buildRustPackage {
  pname = "thumbs";
  inherit ((lib.importTOML (src + "/Cargo.toml")).package) version;
  inherit src doCheck;
  cargoLock.lockFile = src + "/Cargo.lock";
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ vips glib ];
  cargoBuildFlags = [ "--bin" "thumbs" ];
  meta.mainProgram = "thumbs";
}
