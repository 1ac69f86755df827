# libvips for the layer, as lean as the engine allows: it decodes JPEG, PNG, WebP, GIF (libvips'
# built-in nsgif), TIFF and HEIF/AVIF, applies EXIF orientation and ICC profiles (lcms2), and
# encodes JPEG, WebP and AVIF. Everything else is off, each library with the meson feature that
# looks for it (nixpkgs' meson hook passes -Dauto_features=enabled: a nulled library whose
# feature stays on stops configure). No GObject introspection (the Rust binding calls the C API;
# the typelib is for other languages) and so no API docs (libvips' doc/meson.build requires it).
{ lib, vips }:
let
  takes = lib.functionArgs vips.override;
  # vips argument -> the meson features that look for it.
  unused = {
    imagemagick = [ "magick" ]; # ImageMagick loaders and savers
    poppler = [ "poppler" ]; # PDF
    librsvg = [ "rsvg" ]; # SVG
    openslide = [ "openslide" ]; # whole-slide microscopy
    libjxl = [ "jpeg-xl" ]; # JPEG XL
    matio = [ "matio" ]; # Matlab files
    cfitsio = [ "cfitsio" ]; # FITS (astronomy)
    openexr = [ "openexr" ]; # OpenEXR
    openjpeg = [ "openjpeg" ]; # JPEG 2000
    fftw = [ "fftw" ]; # FFT operations
    pango = [ "pangocairo" "fontconfig" ]; # text rendering
    libarchive = [ "archive" ]; # dzsave's zip output
    cgif = [ "cgif" ]; # GIF output
    libimagequant = [ "imagequant" "quantizr" ]; # palette output (quantizr is its fallback)
    libraw = [ "raw" ]; # camera RAW (vips 8.18 on; the argument and the feature came together)
    libultrahdr = [ "uhdr" ]; # UltraHDR (vips 8.18 on)
  };
  # Only what this nixpkgs' vips takes: an argument it lacks would be an error, and its meson
  # files lack the matching feature (-Draw on 8.17 is an unknown option).
  present = lib.filterAttrs (arg: _: takes ? ${arg}) unused;
  lean = vips.override (lib.mapAttrs (_: _: null) present // { withIntrospection = false; }
    // lib.optionalAttrs (takes ? withDevDoc) { withDevDoc = false; });
  docsOn = lib.mesonBool "docs" true;
in
lean.overrideAttrs (old: {
  # vips 8.17 has no withDevDoc and passes -Ddocs=true on Linux whatever we say: turn it off
  # here, and drop the devdoc output it would leave empty.
  mesonFlags = lib.unique (lib.remove docsOn old.mesonFlags ++ [ (lib.mesonBool "docs" false) ]
    ++ map (feature: lib.mesonEnable feature false) (lib.concatLists (lib.attrValues present)));
  outputs = lib.remove "devdoc" old.outputs;
})
