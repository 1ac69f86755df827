# `nix develop`: the Rust toolchain, pkg-config, the AWS CLI, cfn-lint, moto and the shell tools
# as tools; libvips as a library (buildInputs: pkg-config in the shell finds host libraries'
# .pc files through buildInputs, not through tools). The README lists the same (checked).
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    cargo
    rustc
    clippy
    rustfmt
    pkg-config
    awscli2
    python3Packages.cfn-lint
    (python3.withPackages (p: [ p.moto p.flask p.flask-cors p.boto3 p.pytest ]))
    zip
    unzip
    shellcheck
  ];
  buildInputs = [ pkgs.vips ];
}
