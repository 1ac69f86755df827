# rustPlatform.buildRustPackage as far as evaluation sees it: the vendored dependencies come from
# `cargoLock.lockFile`, read at evaluation time, with what importCargoLock demands (a checksum for
# every registry crate, an outputHashes entry for every git crate), and the check cargo makes
# before it compiles anything: every package's `rust-version` against the toolchain's rustc.
# The vendored manifests' rust-versions come from `cargo metadata --locked` as
# scripts/check/nix-eval.sh writes them into ../vendored-crates.json ("name@version" -> version).
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

  manifests = ../vendored-crates.json;
  rustVersions =
    if builtins.pathExists manifests then builtins.fromJSON (builtins.readFile manifests)
    else throw "stand-in buildRustPackage: no vendored-crates.json (scripts/check/nix-eval.sh writes it from cargo metadata)";
  id = p: "${p.name}@${p.version}";
  unknown = lib.filter (p: !(rustVersions ? ${id p})) lock.package;
  # cargo (its check before compiling, the message below sorted by name and version as cargo
  # sorts it): a package whose rust-version is newer than rustc stops the build. compareVersions
  # takes "1.94" as older than "1.94.0", so a partial rust-version is met by its own release.
  tooNew = lib.filter (p: rustVersions.${id p} != null && builtins.compareVersions rustc.version rustVersions.${id p} < 0) lock.package;
  cargoError = ''
    rustc ${rustc.version} is not supported by the following package${lib.optionalString (builtins.length tooNew > 1) "s"}:
    ${lib.concatMapStrings (p: "  ${id p} requires rustc ${rustVersions.${id p}}\n") (lib.sort (a: b: a.name < b.name || a.name == b.name && builtins.compareVersions a.version b.version < 0) tooNew)}Either upgrade rustc or select compatible dependency versions with
    `cargo update <name>@<current-ver> --precise <compatible-ver>`
    where `<compatible-ver>` is the latest version supporting rustc ${rustc.version}'';
in
assert cargoLock != null || cargoHash != null || throw "buildRustPackage: cargoLock or cargoHash is required";
assert problems == [ ] || throw "importCargoLock: ${lib.concatStringsSep "; " problems}";
assert unknown == [ ] || throw "vendored-crates.json has no manifest for ${lib.concatMapStringsSep ", " id unknown} (written from another Cargo.lock?)";
assert tooNew == [ ] || throw cargoError;
stdenv.mkDerivation (builtins.removeAttrs args [ "cargoLock" "cargoHash" ] // {
  nativeBuildInputs = nativeBuildInputs ++ [ cargo rustc ];
  cargoDeps = builtins.toFile "cargo-vendor-list" (lib.concatMapStringsSep "\n" (p: "${p.name}-${p.version} ${p.checksum or p.source}") vendored);
})
