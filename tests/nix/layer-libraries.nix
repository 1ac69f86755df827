# The libraries the Nix layer carries, as far as evaluation can tell: the layer's libc and gcc
# runtime, libvips, the bootstrap's own libraries, and everything they link or propagate
# (buildInputs and propagatedBuildInputs, transitively). Build tools (nativeBuildInputs) are
# not carried. vips lists a Python environment among its buildInputs for its `vipsprofile`
# script (the bin output), which libvips.so does not link: it is left out by name.
layer:
let
  inputs = drv: builtins.filter (d: d != null && !(builtins.elem (d.pname or d.name) [ "python3-env" ]))
    ((drv.buildInputs or [ ]) ++ (drv.propagatedBuildInputs or [ ]));
  key = drv: drv.pname or drv.name;
  closure = builtins.genericClosure {
    startSet = map (d: { key = key d; drv = d; }) ([ layer.libc layer.gccLib layer.vips ] ++ inputs layer.thumbs);
    operator = item: map (d: { key = key d; drv = d; }) (inputs item.drv);
  };
in
map (item: item.key) closure
