# What nixpkgs' meson setup hook and a project's own meson files decide at configure time, for
# sources that carry a model of their meson options (`src.mesonModel`, see ./libvips-meson.nix).
# The hook adds `-Dauto_features=enabled`, so every feature not disabled is required; a required
# dependency that no input provides, an unknown option, or a rule of the project's meson files
# stops configure, as it would stop the real build. Returns the flags the build would run with.
{ lib, hostPlatform }:
args:
let
  flags = args.mesonFlags or [ ];
  model = (args.src or { }).mesonModel or null;
  hookFlags = [ "-Dauto_features=enabled" "-Dwrap_mode=nodownload" ];
  all = hookFlags ++ flags;
  parse = flag:
    let m = builtins.match "-D([^=]+)=(.*)" flag;
    in if m == null then null else { name = builtins.elemAt m 0; value = builtins.elemAt m 1; };
  given = builtins.listToAttrs (map (p: lib.nameValuePair p.name p.value) (lib.filter (p: p != null) (map parse all)));
  mesonBuiltin = name: builtins.elem name [ "auto_features" "wrap_mode" "buildtype" "default_library" "libdir" "prefix" "strip" ]
    || lib.hasPrefix "b_" name || lib.hasPrefix "c_" name || lib.hasPrefix "cpp_" name;
  unknown = lib.filter (name: !(mesonBuiltin name) && !(model.options ? ${name})) (builtins.attrNames given);
  # Inputs a dependency() lookup can find: every input, and what they propagate.
  provided =
    let
      direct = lib.filter (x: x != null) ((args.buildInputs or [ ]) ++ (args.nativeBuildInputs or [ ]) ++ (args.propagatedBuildInputs or [ ]));
      closure = builtins.genericClosure {
        startSet = map (d: { key = d.pname or d.name; drv = d; }) direct;
        operator = item: map (d: { key = d.pname or d.name; drv = d; }) (lib.filter (x: x != null) (item.drv.propagatedBuildInputs or [ ]));
      };
    in
    map (item: item.key) closure;
  value = name:
    let option = model.options.${name}; in
      given.${name} or (if option.type == "feature" && option.default == "auto" then given.auto_features else option.default);
  enabled = name: builtins.elem (value name) [ "enabled" "true" ];
  found = name: enabled name && builtins.any (p: builtins.elem p provided) model.options.${name}.provides;
  lookedUp = lib.filter (name: model.options.${name}.type == "feature" && (model.options.${name}.when or (_: true)) found) (builtins.attrNames model.options);
  missing = lib.filter (name: enabled name && !(found name)) lookedUp;
  state = { inherit enabled found; outputs = args.outputs or [ "out" ]; postFixup = args.postFixup or ""; inherit hostPlatform; };
  ruleErrors = lib.concatMap (rule: lib.optional (rule.fails state) rule.message) (model.rules or [ ]);
  fail = msg: throw "meson configure of ${args.pname or args.name or "?"} ${args.version or ""} would fail: ${msg}";
in
if model == null || !(builtins.any (d: d != null && (d.pname or "") == "meson") (args.nativeBuildInputs or [ ])) then
  { mesonFlags = flags; }
else if unknown != [ ] then
  fail ''ERROR: Unknown options: "${lib.concatStringsSep ''", "'' unknown}"''
else if missing != [ ] then
  fail (lib.concatMapStringsSep "; " (name: ''-D${name}=${value name}: ERROR: Dependency "${lib.concatStringsSep "|" (model.options.${name}.provides ++ lib.optional (model.options.${name}.provides == [ ]) name)}" not found (no input provides it)'') missing)
else if ruleErrors != [ ] then
  fail (lib.concatStringsSep "; " ruleErrors)
else
  { mesonFlags = flags; }
