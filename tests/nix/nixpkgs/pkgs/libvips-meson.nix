# A model of libvips' meson files (meson_options.txt, the dependency() lookups and the rules that
# stop configure) for 8.17 and 8.18, written from libvips' sources; what ./meson.nix checks flags
# against. `provides` names the stand-in packages (pnames) that satisfy a lookup; an empty list
# means nixpkgs' vips has no input for it (pdfium, nifti, spng, quantizr), so it must be disabled.
# `when`: lookups made only when another one failed (quantizr is the fallback for imagequant;
# fontconfig is looked up only together with pangocairo).
version:
let
  boolean = default: { type = "boolean"; inherit default; };
  feature = provides: { type = "feature"; default = "auto"; inherit provides; };
  other = { type = "string"; default = ""; };
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
    magick-package = other;
    magick-features = other;
    nifti-prefix-dir = other;
    fuzzing_engine = other;
    fuzzer_ldflags = other;
    modules = feature [ "glib" ];
    introspection = feature [ "gobject-introspection" ];
    archive = feature [ "libarchive" ];
    cfitsio = feature [ "cfitsio" ];
    cgif = feature [ "cgif" ];
    exif = feature [ "libexif" ];
    fftw = feature [ "fftw" ];
    fontconfig = feature [ "fontconfig" ] // { when = found: found "pangocairo"; };
    heif = feature [ "libheif" ];
    highway = feature [ "libhwy" ];
    imagequant = feature [ "libimagequant" ];
    jpeg = feature [ "libjpeg-turbo" ];
    jpeg-xl = feature [ "libjxl" ];
    lcms = feature [ "lcms2" ];
    magick = feature [ "imagemagick" ];
    matio = feature [ "matio" ];
    nifti = feature [ ];
    openexr = feature [ "openexr" ];
    openjpeg = feature [ "openjpeg" ];
    openslide = feature [ "openslide" ];
    pangocairo = feature [ "pango" ];
    pdfium = feature [ ];
    png = feature [ "libpng" ];
    poppler = feature [ "poppler" ];
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
  rules = [
    {
      # doc/meson.build
      fails = s: s.enabled "docs" && !(s.found "introspection");
      message = "doc/meson.build: ERROR: Problem encountered: API reference requires introspection";
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
