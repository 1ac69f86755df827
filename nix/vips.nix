# libvips for the layer: no GObject introspection (it needs an emulator when cross-compiling)
# and none of the loaders the engine does not use or should not trust (ImageMagick, PDF, SVG,
# OpenSlide, JPEG XL, scientific formats). JPEG, PNG, WebP, GIF, TIFF, HEIF/AVIF stay.
{ lib, vips }:
let
  wanted = {
    withIntrospection = false;
    withDevDoc = false;
    imagemagick = null;
    poppler = null;
    librsvg = null;
    openslide = null;
    libjxl = null;
    libraw = null;
    matio = null;
    cfitsio = null;
    openexr = null;
  };
  # Only the arguments this nixpkgs' vips takes: they differ between releases.
  lean = vips.override (builtins.intersectAttrs (lib.functionArgs vips.override) wanted);
in
lean.overrideAttrs (old: {
  mesonFlags = (old.mesonFlags or [ ]) ++ map (feature: lib.mesonEnable feature false) [
    "magick"
    "poppler"
    "rsvg"
    "openslide"
    "jpeg-xl"
    "matio"
    "cfitsio"
    "openexr"
  ];
})
