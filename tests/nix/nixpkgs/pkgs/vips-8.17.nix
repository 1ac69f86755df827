# Stand-in for nixos-25.11's pkgs/by-name/vi/vips/package.nix (vips 8.17.3): the same formal
# arguments (so `override` with an argument it does not take fails, and `lib.functionArgs` sees
# what the real one offers), the same outputs, inputs, mesonFlags and postFixup logic.
{ lib
, stdenv
, fetchFromGitHub
, docbook-xsl-nons
, gi-docgen
, gobject-introspection
, meson
, ninja
, pkg-config
, buildPackages
, expat
, glib
, libxml2
, python3
, cfitsio
, cgif
, fftw
, imagemagick
, lcms2
, libarchive
, libexif
, libheif
, libhwy
, libimagequant
, libjpeg
, libjxl
, librsvg
, libpng
, libtiff
, libwebp
, matio
, openexr
, openjpeg
, openslide
, pango
, poppler
, withIntrospection ? lib.meta.availableOn stdenv.hostPlatform gobject-introspection
    && stdenv.hostPlatform.emulatorAvailable buildPackages
, testers
, nix-update-script
}:
let
  docs = !stdenv.hostPlatform.isDarwin && !stdenv.hostPlatform.isFreeBSD;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "vips";
  version = "8.17.3";
  src = fetchFromGitHub { owner = "libvips"; repo = "libvips"; tag = "v${finalAttrs.version}"; };
  outputs = [ "bin" "out" "man" "dev" ] ++ lib.optionals docs [ "devdoc" ];
  nativeBuildInputs = [ docbook-xsl-nons gobject-introspection meson ninja pkg-config ]
    ++ lib.optionals docs [ gi-docgen ];
  buildInputs = [
    glib
    libxml2
    expat
    (python3.withPackages (p: [ p.pycairo ]))
    cfitsio
    cgif
    fftw
    imagemagick
    lcms2
    libarchive
    libexif
    libheif
    libhwy
    libimagequant
    libjpeg
    libjxl
    librsvg
    libpng
    libtiff
    libwebp
    matio
    openexr
    openjpeg
    openslide
    pango
    poppler
  ];
  propagatedBuildInputs = [ glib ];
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
  passthru.tests.version = testers.testVersion { package = finalAttrs.finalPackage; };
  passthru.updateScript = nix-update-script { };
  meta = {
    platforms = lib.platforms.unix;
    mainProgram = "vips";
  };
})
