# stdenv.mkDerivation as nixpkgs shapes it (finalAttrs, overrideAttrs, outputs, env, meta,
# passthru), producing real derivations: every input is interpolated, so a drvPath changes when
# anything changes and evaluating it forces every input. The builders are trivial: these are
# for evaluation, not for running. What stays from nixpkgs' build is modelled where it decides
# whether a build can succeed: meson's configure (./meson.nix) and empty or missing outputs.
{ lib, buildPlatform, hostPlatform, cc }:
let
  isCross = buildPlatform.config != hostPlatform.config;
  # Attributes that nixpkgs keeps out of the derivation's environment.
  internal = [ "meta" "passthru" "env" "cargoLock" "finalPackage" "overrideAttrs" "outputs" "name" "pname" "version" "__structuredAttrs" ];
  coercible = value:
    builtins.isString value || builtins.isBool value || builtins.isInt value || builtins.isPath value
    || value == null || lib.isDerivation value || (builtins.isAttrs value && value ? outPath)
    || (builtins.isList value && builtins.all coercible value);
  build = args:
    let
      outputs = args.outputs or [ "out" ];
      name = args.name or "${args.pname}${lib.optionalString isCross "-${hostPlatform.config}"}${lib.optionalString (args ? version) "-${args.version}"}";
      configured = import ./meson.nix { inherit lib hostPlatform; } args;
      # Names decided without forcing values (as nixpkgs' mkDerivation): an attribute read off the
      # result (layer.vips) must not evaluate the derivation's other inputs.
      drv = derivation (lib.mapAttrs (_: v: if coercible v then v else null) (builtins.removeAttrs args internal) // (args.env or { }) // {
        inherit name outputs;
        system = buildPlatform.system;
        builder = "/bin/sh";
        args = [ "-c" "for o in $outputs; do eval \"echo stub > \\$$o\"; done" ];
        mesonFlags = configured.mesonFlags;
      });
    in
    # As with nixpkgs, the derivation's arguments stay readable on the result (drv.src, ...).
    builtins.removeAttrs args [ "passthru" "finalPackage" "env" ] // drv // args.passthru or { } // {
      meta = { outputsToInstall = [ (builtins.head outputs) ]; } // args.meta or { };
      # What a meson-modelled library links (./meson.nix), for the layer's closure.
      mesonLinks = configured.links;
    } // lib.genAttrs [ "nativeBuildInputs" "buildInputs" "propagatedBuildInputs" "nativeCheckInputs" ] (n: args.${n} or [ ]);
  extensible = rattrs:
    let
      args = rattrs (args // { inherit finalPackage; });
      finalPackage = build args // {
        overrideAttrs = f0: extensible (lib.extends (lib.toExtension f0) rattrs);
      };
    in
    finalPackage;
  stdenv = {
    inherit buildPlatform hostPlatform cc;
    inherit (hostPlatform) isLinux isDarwin;
    targetPlatform = hostPlatform;
    mkDerivation = fnOrAttrs: extensible (if builtins.isFunction fnOrAttrs then fnOrAttrs else _: fnOrAttrs);
  };
in
stdenv
