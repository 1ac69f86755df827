# The crate's sources only, so edits to docs or scripts do not rebuild the binary.
{ lib, root }:
let
  fs = lib.fileset;
in
fs.toSource {
  inherit root;
  fileset = fs.unions [
    (root + "/Cargo.toml")
    (root + "/Cargo.lock")
    (root + "/src")
    (fs.maybeMissing (root + "/tests"))
    (fs.maybeMissing (root + "/benches"))
    (fs.maybeMissing (root + "/build.rs"))
  ];
}
