# The stub package set for one host platform, as nixos-26.05 has it (../release.nix; every stub's
# upstream file is in ../PROVENANCE.md). Only `vips` is called and overridden the way the flake
# overrides it, so it alone has nixpkgs' exact argument list (./vips-8.18.nix); the other packages
# are leaves with the libraries their nixpkgs counterparts link (enough to list a closure), and
# functions (runCommand, mkShell, writeShellApplication, buildRustPackage, python3.withPackages)
# with nixpkgs' argument names.
{ lib, final, buildPlatform, hostPlatform, buildPackages, pkgsCross }:
let
  isCross = buildPlatform.config != hostPlatform.config;
  callPackage = lib.callPackageWith final;
  inherit (final) stdenv;
  # A package: name and the libraries it propagates or links.
  leaf = pname: { deps ? [ ], propagated ? [ ], meta ? { }, version ? null }: stdenv.mkDerivation ({
    inherit pname;
    buildInputs = deps;
    propagatedBuildInputs = propagated;
    meta = { platforms = lib.platforms.all; } // meta;
  } // lib.optionalAttrs (version != null) { inherit version; });
  release = import ../release.nix;
  # Tools run at build time come from the build platform's set, as with nixpkgs' splicing.
  tool = pname: buildPackages.${pname};
  pythonPackageNames = [ "moto" "flask" "flask-cors" "boto3" "pytest" "pycairo" "cfn-lint" ];
in
{
  inherit lib callPackage buildPackages pkgsCross;
  inherit (final.stdenv) buildPlatform hostPlatform;
  targetPlatform = hostPlatform;

  stdenv = import ./stdenv.nix {
    inherit lib buildPlatform hostPlatform;
    cc = {
      name = "${lib.optionalString isCross "${hostPlatform.config}-"}gcc-wrapper";
      targetPrefix = lib.optionalString isCross "${hostPlatform.config}-";
      bintools = tool "binutils";
      libc = final.glibc;
      cc = final.gcc-unwrapped;
      outPath = (tool "gcc-unwrapped").outPath;
    };
  };

  # Libraries with the libraries their nixpkgs builds link or propagate (the rest, below, are
  # leaves: the libraries the lean libvips leaves out have their own closures elided, since the
  # layer does not carry them).
  glibc = leaf "glibc" { meta.platforms = lib.platforms.linux; };
  gcc-unwrapped = leaf "gcc" { } // { lib = leaf "gcc-lib" { }; };
  util-linuxMinimal = leaf "util-linux-minimal" { };
  glib = leaf "glib" { deps = [ final.pcre2 ] ++ lib.optionals hostPlatform.isLinux [ final.libselinux final.util-linuxMinimal ]; propagated = [ final.zlib final.libffi ]; };
  libselinux = leaf "libselinux" { deps = [ final.pcre2 ]; meta.platforms = lib.platforms.linux; };
  libxml2 = leaf "libxml2" { propagated = [ final.zlib ]; };
  libjpeg = leaf "libjpeg-turbo" { };
  libpng = leaf "libpng" { propagated = [ final.zlib ]; };
  libtiff = leaf "libtiff" { propagated = [ final.libdeflate final.libjpeg final.xz final.zlib final.zstd final.lerc final.libwebp ]; };
  # Codecs built in (no plugin options passed); its gdk-pixbuf loader is a separate module that
  # libheif.so does not link, so gdk-pixbuf is left out.
  libheif = leaf "libheif" { deps = [ final.dav1d final.rav1e final.libde265 final.x265 final.libaom final.libjpeg final.libpng ]; };
  pango = leaf "pango" { propagated = [ final.fontconfig ]; };

  # Tools whose names differ from their attributes, or that need a platform list.
  binutils = leaf "binutils-wrapper" { };
  pkg-config = leaf "pkg-config-wrapper" { };
  gobject-introspection = leaf "gobject-introspection" { meta.platforms = lib.platforms.unix; };
  nukeReferences = leaf "nuke-references" { };
  qemu-user = leaf "qemu-user" { meta.platforms = lib.platforms.linux; };
  nixpkgs-fmt = leaf "nixpkgs-fmt" { meta.mainProgram = "nixpkgs-fmt"; };

  python3 = leaf "python3" { } // {
    pkgs = lib.genAttrs pythonPackageNames (name: leaf "python3.13-${name}" { });
    withPackages = f:
      let packages = f final.python3.pkgs;
      in
      assert builtins.isList packages || throw "python3.withPackages: the function must return a list";
      leaf "python3-env" { propagated = packages; };
  };
  python3Packages = final.python3.pkgs;

  vips = callPackage ./vips-8.18.nix { };

  # nixpkgs' Rust toolchain of the release: rustc, cargo, clippy and rustfmt share its version.
  rustc = leaf "rustc" { version = release.rust; };
  cargo = leaf "cargo" { version = release.rust; };

  # Fetchers and passthru helpers: never fetched here (the meson model rides on the source).
  fetchFromGitHub = { repo, tag ? null, rev ? null, ... }:
    leaf "${repo}-source" { } // {
      rev = if tag != null then tag else rev;
      mesonModel = lib.optionalAttrs (repo == "libvips")
        (import ./libvips-meson.nix (lib.removePrefix "v" tag));
    };
  testers.testVersion = { package, ... }: leaf "${package.pname}-test-version" { deps = [ package ]; };
  nix-update-script = _: [ "nix-update" ];

  # Trivial builders and the Rust builder, with nixpkgs' argument names.
  runCommand = name: env: buildCommand: stdenv.mkDerivation (env // { inherit name buildCommand; });
  writeShellScriptBin = name: text: stdenv.mkDerivation { inherit name text; meta.mainProgram = name; };
  writeShellApplication =
    { name
    , text
    , runtimeInputs ? [ ]
    , runtimeEnv ? null
    , meta ? { }
    , passthru ? { }
    , checkPhase ? null
    , excludeShellChecks ? [ ]
    , extraShellCheckFlags ? [ ]
    , bashOptions ? [ "errexit" "nounset" "pipefail" ]
    , derivationArgs ? { }
    , inheritPath ? true
    }:
      assert runtimeEnv == null && checkPhase == null && excludeShellChecks == [ ] && extraShellCheckFlags == [ ]
      && derivationArgs == { } && inheritPath && bashOptions != [ ];
      stdenv.mkDerivation {
        inherit name text passthru;
        nativeBuildInputs = [ (tool "shellcheck") ];
        propagatedBuildInputs = runtimeInputs;
        meta = { mainProgram = name; } // meta;
      };
  mkShell = { name ? "nix-shell", packages ? [ ], inputsFrom ? [ ], buildInputs ? [ ], nativeBuildInputs ? [ ], ... }@attrs:
    assert inputsFrom == [ ];
    stdenv.mkDerivation (builtins.removeAttrs attrs [ "packages" "inputsFrom" ] // {
      inherit name buildInputs;
      nativeBuildInputs = packages ++ nativeBuildInputs;
    });
  rustPlatform.buildRustPackage = import ./build-rust-package.nix { inherit lib stdenv; inherit (buildPackages) cargo rustc; };
}
  // lib.genAttrs
  # Leaves: libraries without inputs of their own that matter here, and build tools.
  [ "zlib" "libffi" "pcre2" "expat" "libwebp" "libdeflate" "xz" "zstd" "lerc" "libexif" "lcms2" "libhwy" "libde265" "x265" "dav1d" "rav1e" "libaom" "cgif" "libimagequant" "fftw" "cfitsio" "libarchive" "libjxl" "matio" "openexr" "openjpeg" "openslide" "poppler" "librsvg" "imagemagick" "fontconfig" "libraw" "libultrahdr" "meson" "ninja" "docbook-xsl-nons" "gi-docgen" "patchelf" "zip" "unzip" "clippy" "rustfmt" "awscli2" "coreutils" "gnugrep" "gnused" "gawk" "shellcheck" ]
  (name: leaf name { })
