# A model of libvips' meson files (meson_options.txt, the dependency() lookups and the rules that
# stop configure) for 8.17 and 8.18; what ./meson.nix checks flags against. Sources and what
# could not be read are in ../PROVENANCE.md.
#   type/default: the option's, as meson_options.txt declares it (`feature` options default to
#     auto, which nixpkgs' -Dauto_features=enabled turns into enabled; `modules` says enabled).
#   provides: the stand-in packages (pnames) that satisfy the option's dependency() lookup; `all`:
#     every one of them is needed (fontconfig needs pango's pangoft2 and fontconfig); [ ]: nixpkgs'
#     vips has no input for it (pdfium, nifti, spng, quantizr), so it must be disabled. An option
#     without `provides` makes no lookup of its own (the *-module switches: whether a found
#     library is built as a module).
#   when: lookups made only when another one failed (quantizr is the fallback for imagequant, orc
#     for highway).
#   requires: what meson.build looks up whatever the options (glib's gio/gobject/gmodule, expat).
version:
let
  boolean = default: { type = "boolean"; inherit default; };
  feature = provides: { type = "feature"; default = "auto"; inherit provides; };
  switch = { type = "feature"; default = "auto"; };
  other = default: { type = "string"; inherit default; };
  v817 = {
    deprecated = boolean "true";
    examples = boolean "true";
    cplusplus = boolean "true";
    docs = boolean "false";
    cpp-docs = boolean "false";
    vapi = boolean "false";
    nsgif = boolean "true";
    ppm = boolean "true";
    analyze = boolean "true";
    radiance = boolean "true";
    magick-package = other "MagickCore";
    magick-features = { type = "array"; default = [ "load" "save" ]; };
    nifti-prefix-dir = other "";
    fuzzing_engine = { type = "combo"; default = "none"; };
    fuzzer_ldflags = other "";
    modules = feature [ "glib" ] // { default = "enabled"; };
    introspection = feature [ "gobject-introspection" ];
    archive = feature [ "libarchive" ];
    cfitsio = feature [ "cfitsio" ];
    cgif = feature [ "cgif" ];
    exif = feature [ "libexif" ];
    fftw = feature [ "fftw" ];
    fontconfig = feature [ "pango" "fontconfig" ] // { all = true; };
    heif = feature [ "libheif" ];
    heif-module = switch;
    highway = feature [ "libhwy" ];
    imagequant = feature [ "libimagequant" ];
    jpeg = feature [ "libjpeg-turbo" ];
    jpeg-xl = feature [ "libjxl" ];
    jpeg-xl-module = switch;
    lcms = feature [ "lcms2" ];
    magick = feature [ "imagemagick" ];
    magick-module = switch;
    matio = feature [ "matio" ];
    nifti = feature [ ];
    openexr = feature [ "openexr" ];
    openjpeg = feature [ "openjpeg" ];
    openslide = feature [ "openslide" ];
    openslide-module = switch;
    orc = feature [ "orc" ] // { when = found: !(found "highway"); };
    pangocairo = feature [ "pango" ];
    pdfium = feature [ ];
    png = feature [ "libpng" ];
    poppler = feature [ "poppler" ];
    poppler-module = switch;
    quantizr = feature [ ] // { when = found: !(found "imagequant"); };
    rsvg = feature [ "librsvg" ];
    spng = feature [ ];
    tiff = feature [ "libtiff" ];
    webp = feature [ "libwebp" ];
    zlib = feature [ "zlib" ];
  };
  # 8.18 added libraw (RAW camera files) and libultrahdr (UltraHDR JPEG).
  v818 = v817 // {
    raw = feature [ "libraw" ];
    uhdr = feature [ "libultrahdr" ];
  };
  options =
    if builtins.match "8\\.17\\..*" version != null then v817
    else if builtins.match "8\\.18\\..*" version != null then v818
    else throw "no meson model for libvips ${version}";
in
{
  inherit options;
  requires = [ "glib" "expat" ];
  rules = [
    {
      # doc/meson.build
      fails = s: s.enabled "docs" && !(s.found "introspection");
      message = "doc/meson.build: ERROR: Problem encountered: API reference requires introspection";
    }
    {
      # doc/meson.build: find_program('gi-docgen')
      fails = s: s.enabled "docs" && !(s.has "gi-docgen");
      message = "doc/meson.build: ERROR: Program 'gi-docgen' not found or not executable";
    }
    {
      # the docs are the only thing installed under share/doc: without them `devdoc` is empty
      fails = s: builtins.elem "devdoc" s.outputs && !(s.enabled "docs");
      message = "builder failed to produce output path for output 'devdoc' (docs are off, so nothing goes there)";
    }
    {
      # moveToOutput to an output that does not exist, with files to move
      fails = s: s.enabled "docs" && !(builtins.elem "devdoc" s.outputs) && builtins.match ".*[$]devdoc.*" s.postFixup != null;
      message = "postFixup moves share/doc to $devdoc, which is not an output";
    }
  ];
}
