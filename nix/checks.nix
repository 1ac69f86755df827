# `nix flake check`: formatting, clippy with warnings as errors, and the crate's tests
# (natively, inside the build sandbox: tests that need a local AWS endpoint must skip there).
{ pkgs, thumbs }:
{
  # rustfmt directly: `cargo fmt` would resolve the dependency graph, which needs the network.
  fmt = pkgs.runCommand "thumbs-fmt" { nativeBuildInputs = [ pkgs.rustfmt ]; } ''
    cd ${thumbs.src}
    find . -name '*.rs' -print0 | xargs -0 rustfmt --check --edition 2021
    touch $out
  '';
  clippy = thumbs.overrideAttrs (old: {
    pname = "thumbs-clippy";
    nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
    buildPhase = "cargo clippy --offline --all-targets -- -D warnings";
    installPhase = "touch $out";
    doCheck = false;
  });
  tests = thumbs.override { doCheck = true; };
  inherit thumbs;
}
