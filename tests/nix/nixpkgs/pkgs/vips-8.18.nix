# Stand-in for nixos-26.05's pkgs/by-name/vi/vips/package.nix (vips 8.18, ../PROVENANCE.md):
# compared with 8.17.3 it takes `libraw`, `libultrahdr` and `withDevDoc`, and passes `-Ddocs=true`
# only with withDevDoc. The pinned release's vips; ./vips-8.17.nix is the previous pin's.
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
  version = (import ../release.nix).vips;
  docs = withDevDoc;
  optional = [ libraw libultrahdr ];
}
