# The libraries the Nix layer carries, as far as evaluation can tell: the layer's libc and gcc
# runtime, libvips, the bootstrap's own libraries, and everything they link or propagate,
# transitively. For libvips that is what its meson files link (the stand-in's `mesonLinks`: glib,
# expat and the libraries of the features found), not every input nixpkgs hands it (libxml2 and
# a Python for the `vipsprofile` script are inputs that libvips.so does not link); for the other
# stubs, their buildInputs and propagatedBuildInputs. Build tools (nativeBuildInputs) are not carried.
layer:
let
  inputs = drv: builtins.filter (d: d != null)
    (if drv.mesonLinks or null != null then drv.mesonLinks
    else (drv.buildInputs or [ ]) ++ (drv.propagatedBuildInputs or [ ]));
  key = drv: drv.pname or drv.name;
  closure = builtins.genericClosure {
    startSet = map (d: { key = key d; drv = d; }) ([ layer.libc layer.gccLib layer.vips ] ++ inputs layer.thumbs);
    operator = item: map (d: { key = key d; drv = d; }) (inputs item.drv);
  };
in
map (item: item.key) closure
