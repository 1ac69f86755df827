# The thumbs binary for the host platform of the package set that calls this (aarch64 for the
# Lambda artifacts, the build machine for checks). forLambda optimises for size as
# scripts/build/dist.sh does, for the 5 MB function.zip budget.
{ lib, rustPlatform, pkg-config, vips, glib, src, cargoToml, cargoLockFile, doCheck ? false, forLambda ? false }:
rustPlatform.buildRustPackage {
  pname = "thumbs";
  inherit ((lib.importTOML cargoToml).package) version;
  inherit src doCheck;
  cargoLock.lockFile = cargoLockFile;
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ vips glib ];
  cargoBuildFlags = [ "--bin" "thumbs" ];
  env = lib.optionalAttrs forLambda {
    CARGO_PROFILE_RELEASE_OPT_LEVEL = "z";
    CARGO_PROFILE_RELEASE_LTO = "fat";
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS = "1";
  };
  meta.mainProgram = "thumbs";
}
