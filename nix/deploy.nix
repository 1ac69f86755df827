# `nix run .#deploy -- ARGS`: scripts/deploy/deploy.sh with the flake's aarch64 zips (override with
# FUNCTION_ZIP / LAYER_ZIP). Relative paths in ARGS resolve in the flake's source copy.
{ pkgs, self, lambda, layer }:
let
  deploy = pkgs.writeShellApplication {
    name = "thumbs-deploy";
    runtimeInputs = with pkgs; [ awscli2 coreutils gnugrep gnused gawk python3 ];
    text = ''
      export FUNCTION_ZIP="''${FUNCTION_ZIP:-${lambda}}" LAYER_ZIP="''${LAYER_ZIP:-${layer}}"
      exec bash ${self}/scripts/deploy/deploy.sh "$@"
    '';
  };
in
{
  type = "app";
  program = "${deploy}/bin/thumbs-deploy";
  meta.description = "Deploy the thumbs stack (CloudFormation) with the flake's Lambda zips";
}
