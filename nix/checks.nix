# `nix flake check`: formatting, clippy with warnings as errors, and the crate's tests natively,
# with a moto server on loopback for tests/aws.rs (as `make test` does).
{ pkgs, thumbs }:
let
  # p.moto, not `with p; [ moto ]`: a let binding shadows `with`, so that `moto` would be this one.
  moto = pkgs.python3.withPackages (p: [ p.moto p.flask p.flask-cors ]);
in
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
  tests = (thumbs.override { doCheck = true; }).overrideAttrs (old: {
    nativeCheckInputs = (old.nativeCheckInputs or [ ]) ++ [ moto ];
    # moto listens on loopback: allowed in the Darwin sandbox only when asked for.
    __darwinAllowLocalNetworking = true;
    preCheck = ''
      moto_server -H 127.0.0.1 -p 5000 >moto.log 2>&1 &
      moto_pid=$!
      export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
      for _ in $(seq 50); do python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:5000/moto-api/")' 2>/dev/null && break; sleep 0.2; done
    '';
    postCheck = "kill $moto_pid";
  });
  inherit thumbs;
}
