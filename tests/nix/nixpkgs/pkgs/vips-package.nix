# The body both vips stand-ins share (./vips-8.17.nix, ./vips-8.18.nix; their argument lists
# differ): outputs, inputs, mesonFlags and postFixup as nixpkgs' vips package has them. `pkgs`:
# the arguments the release's file received. `docs`: whether that release's package builds the
# API docs (8.17.3: on Linux, always; 8.18: with withDevDoc). `optional`: its extra libraries.
pkgs:
{ version, docs, optional ? [ ] }:
let
  inherit (pkgs) lib imagemagick withIntrospection;
  inputs = map (name: pkgs.${name});
in
pkgs.stdenv.mkDerivation (finalAttrs: {
  pname = "vips";
  inherit version;
  src = pkgs.fetchFromGitHub { owner = "libvips"; repo = "libvips"; tag = "v${finalAttrs.version}"; };
  outputs = [ "bin" "out" "man" "dev" ] ++ lib.optionals docs [ "devdoc" ];
  nativeBuildInputs = inputs [ "docbook-xsl-nons" "gobject-introspection" "meson" "ninja" "pkg-config" ]
    ++ lib.optionals docs [ pkgs.gi-docgen ];
  buildInputs = [ (pkgs.python3.withPackages (p: [ p.pycairo ])) ] ++ inputs [
    "glib"
    "libxml2"
    "expat"
    "cfitsio"
    "cgif"
    "fftw"
    "imagemagick"
    "lcms2"
    "libarchive"
    "libexif"
    "libheif"
    "libhwy"
    "libimagequant"
    "libjpeg"
    "libjxl"
    "librsvg"
    "libpng"
    "libtiff"
    "libwebp"
    "matio"
    "openexr"
    "openjpeg"
    "openslide"
    "pango"
    "poppler"
  ] ++ optional;
  propagatedBuildInputs = [ pkgs.glib ];
  mesonFlags = [
    (lib.mesonEnable "pdfium" false)
    (lib.mesonEnable "nifti" false)
    (lib.mesonEnable "spng" false)
    (lib.mesonEnable "introspection" withIntrospection)
  ]
  ++ lib.optional docs (lib.mesonBool "docs" true)
  ++ lib.optional (imagemagick == null) (lib.mesonEnable "magick" false);
  postFixup = ''
    moveToOutput "share/doc" "$devdoc"
  '';
  passthru.tests.version = pkgs.testers.testVersion { package = finalAttrs.finalPackage; };
  passthru.updateScript = pkgs.nix-update-script { };
  meta = {
    platforms = lib.platforms.unix;
    mainProgram = "vips";
  };
})
