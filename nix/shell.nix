# `nix develop`: the Rust toolchain, libvips, the AWS CLI, cfn-lint and moto for local AWS.
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    cargo
    rustc
    clippy
    rustfmt
    pkg-config
    vips
    awscli2
    python3Packages.cfn-lint
    (python3.withPackages (p: with p; [ moto flask flask-cors boto3 pytest ]))
    zip
    unzip
    shellcheck
  ];
}
