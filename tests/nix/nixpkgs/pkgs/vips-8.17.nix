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
}@args:
# `@args` lacks defaulted arguments: withIntrospection is passed on by name.
import ./vips-package.nix (args // { inherit withIntrospection; }) {
  version = "8.17.3";
  docs = !stdenv.hostPlatform.isDarwin && !stdenv.hostPlatform.isFreeBSD;
}
