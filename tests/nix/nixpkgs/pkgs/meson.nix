# What nixpkgs' meson setup hook and a project's own meson files decide at configure time, for
# sources that carry a model of their meson options (`src.mesonModel`, see ./libvips-meson.nix).
# The hook adds `-Dauto_features=enabled`, so every feature not disabled is required; a required
# dependency that no input provides, an unknown option, or a rule of the project's meson files
# stops configure, as it would stop the real build. Returns the flags the build would run with and
# the inputs the built library links (null without a model).
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
  closure =
    let
      direct = lib.filter (x: x != null) ((args.buildInputs or [ ]) ++ (args.nativeBuildInputs or [ ]) ++ (args.propagatedBuildInputs or [ ]));
      entry = d: { key = d.pname or d.name; drv = d; };
    in
    builtins.genericClosure {
      startSet = map entry direct;
      operator = item: map entry (lib.filter (x: x != null) (item.drv.propagatedBuildInputs or [ ]));
    };
  provided = map (item: item.key) closure;
  has = p: builtins.elem p provided;
  value = name:
    let option = model.options.${name}; in
      given.${name} or (if option.type == "feature" && option.default == "auto" then given.auto_features else option.default);
  enabled = name: builtins.elem (value name) [ "enabled" "true" ];
  found = name:
    let option = model.options.${name}; in
    enabled name && option.provides != [ ] && (if option.all or false then builtins.all has else builtins.any has) option.provides;
  lookedUp = lib.filter (name: model.options.${name}.type == "feature" && model.options.${name} ? provides && (model.options.${name}.when or (_: true)) found) (builtins.attrNames model.options);
  missing = lib.filter (name: enabled name && !(found name)) lookedUp;
  # What to name in a "not found" error: the option's name when nothing could provide it.
  absent = name:
    let option = model.options.${name}; in
    if option.provides == [ ] then name
    else if option.all or false then lib.concatStringsSep "\" and \"" (lib.filter (p: !(has p)) option.provides)
    else lib.concatStringsSep "|" option.provides;
  state = { inherit enabled found has; outputs = args.outputs or [ "out" ]; postFixup = args.postFixup or ""; inherit hostPlatform; };
  ruleErrors = lib.concatMap (rule: lib.optional (rule.fails state) rule.message) (model.rules or [ ]);
  fail = msg: throw "meson configure of ${args.pname or args.name or "?"} ${args.version or ""} would fail: ${msg}";
  # What the library links: the inputs meson.build always looks up and those of the features found.
  linkedNames = model.requires ++ lib.concatMap (name: lib.optionals (found name) model.options.${name}.provides) lookedUp;
  links = map (item: item.drv) (lib.filter (item: builtins.elem item.key linkedNames) closure);
in
if model == null || !(builtins.any (d: d != null && (d.pname or "") == "meson") (args.nativeBuildInputs or [ ])) then
  { mesonFlags = flags; links = null; }
else if unknown != [ ] then
  fail ''ERROR: Unknown options: "${lib.concatStringsSep ''", "'' unknown}"''
else if missing != [ ] then
  fail (lib.concatMapStringsSep "; " (name: ''-D${name}=${value name}: ERROR: Dependency "${absent name}" not found (no input provides it)'') missing)
else if ruleErrors != [ ] then
  fail (lib.concatStringsSep "; " ruleErrors)
else
  { mesonFlags = flags; inherit links; }
