# The Nix twin of dist/layer.zip, made by the same layer/build-layer.sh: the closure of the
# lean libvips and of the bootstrap, glibc and its loader, the heif module where libvips looks
# for it with VIPSHOME=/opt. Store paths in the libraries' strings are blanked (nuke-refs).
{ lib, runCommand, patchelf, zip, nukeReferences, thumbs, vips, targetCc, self }:
let
  modules = "${vips.out}/lib/vips-modules-${lib.versions.majorMinor vips.version}";
in
runCommand "thumbs-layer.zip"
{
  nativeBuildInputs = [ patchelf zip nukeReferences targetCc.bintools ];
  # What the layer is made of, for inspection (scripts/check/check-nix.sh lists its libraries).
  passthru = { inherit vips thumbs; inherit (targetCc) libc; gccLib = targetCc.cc.lib; };
} ''
  export READELF=${targetCc.targetPrefix}readelf STRIP=${targetCc.targetPrefix}strip
  # With modules disabled at build time, heif is inside libvips itself.
  module_args=()
  if [ -d ${modules} ]; then
    module_args=(--modules-dir ${modules} --modules heif)
  fi
  bash ${self}/layer/build-layer.sh --out layer --search ${targetCc.libc}/lib \
    "''${module_args[@]}" --exe ${thumbs}/bin/thumbs ${vips.out}/lib/libvips.so.42
  find layer -type f -exec nuke-refs {} +
  bash ${self}/layer/zip-tree.sh layer $out
''
