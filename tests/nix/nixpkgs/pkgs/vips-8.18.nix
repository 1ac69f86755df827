# Stand-in for nixpkgs' vips 8.18 package (nixpkgs-unstable, the 26.05 line): compared with
# 8.17.3 it takes `libraw`, `libultrahdr` and `withDevDoc`, and passes `-Ddocs=true` only with
# withDevDoc. Used by scripts/check-nix.sh to evaluate the lean override against the next release.
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
, libraw
, librsvg
, libpng
, libtiff
, libultrahdr
, libwebp
, matio
, openexr
, openjpeg
, openslide
, pango
, poppler
, withIntrospection ? lib.meta.availableOn stdenv.hostPlatform gobject-introspection
    && stdenv.hostPlatform.emulatorAvailable buildPackages
, withDevDoc ? !stdenv.hostPlatform.isDarwin && !stdenv.hostPlatform.isFreeBSD
    && !(stdenv.hostPlatform.isRiscV && stdenv.hostPlatform.isLinux)
, testers
, nix-update-script
}:
stdenv.mkDerivation (finalAttrs: {
  pname = "vips";
  version = "8.18.0";
  src = fetchFromGitHub { owner = "libvips"; repo = "libvips"; tag = "v${finalAttrs.version}"; };
  outputs = [ "bin" "out" "man" "dev" ] ++ lib.optionals withDevDoc [ "devdoc" ];
  nativeBuildInputs = [ docbook-xsl-nons gobject-introspection meson ninja pkg-config ]
    ++ lib.optionals withDevDoc [ gi-docgen ];
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
    libraw
    librsvg
    libpng
    libtiff
    libultrahdr
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
  ++ lib.optional withDevDoc (lib.mesonBool "docs" true)
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
