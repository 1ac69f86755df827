# Stand-in for nixpkgs' vips 8.18 package (nixpkgs-unstable, the 26.05 line): compared with
# 8.17.3 it takes `libraw`, `libultrahdr` and `withDevDoc`, and passes `-Ddocs=true` only with
# withDevDoc. Used by scripts/check/check-nix.sh to evaluate the lean override against the next release.
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
}@args:
import ./vips-package.nix (args // { inherit withIntrospection; }) {
  version = "8.18.0";
  docs = withDevDoc;
  optional = [ libraw libultrahdr ];
}
