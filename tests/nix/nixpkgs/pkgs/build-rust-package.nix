# rustPlatform.buildRustPackage as far as evaluation sees it: the vendored dependencies come from
# `cargoLock.lockFile`, read at evaluation time, with what importCargoLock demands (a checksum for
# every registry crate, an outputHashes entry for every git crate).
{ lib, stdenv, cargo, rustc }:
{ cargoLock ? null, cargoHash ? null, nativeBuildInputs ? [ ], ... }@args:
let
  lock = builtins.fromTOML (builtins.readFile cargoLock.lockFile);
  hashes = cargoLock.outputHashes or { };
  crateProblem = p:
    if lib.hasPrefix "registry+" (p.source or "") && !(p ? checksum) then "${p.name} ${p.version} has no checksum"
    else if lib.hasPrefix "git+" (p.source or "") && !(hashes ? "${p.name}-${p.version}") then "git crate ${p.name}-${p.version} needs cargoLock.outputHashes"
    else null;
  problems = lib.filter (x: x != null) (map crateProblem lock.package);
  vendored = lib.filter (p: p ? source) lock.package;
in
assert cargoLock != null || cargoHash != null || throw "buildRustPackage: cargoLock or cargoHash is required";
assert problems == [ ] || throw "importCargoLock: ${lib.concatStringsSep "; " problems}";
stdenv.mkDerivation (builtins.removeAttrs args [ "cargoLock" "cargoHash" ] // {
  nativeBuildInputs = nativeBuildInputs ++ [ cargo rustc ];
  cargoDeps = builtins.toFile "cargo-vendor-list" (lib.concatMapStringsSep "\n" (p: "${p.name}-${p.version} ${p.checksum or p.source}") vendored);
})
