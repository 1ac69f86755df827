# The Nix twin of dist/function.zip: the aarch64 thumbs binary as `bootstrap`, its ELF
# interpreter and RPATH pointed at the layer (/opt/lib, RPATH not RUNPATH: see
# scripts/build/dist.sh), store paths blanked, zipped reproducibly by the same script as `make dist`.
{ runCommand, patchelf, zip, nukeReferences, thumbs, targetCc, self }:
runCommand "thumbs-function.zip" { nativeBuildInputs = [ patchelf zip nukeReferences targetCc.bintools ]; } ''
  mkdir function
  cp ${thumbs}/bin/thumbs function/bootstrap
  chmod u+w function/bootstrap
  ${targetCc.targetPrefix}strip --strip-all function/bootstrap
  patchelf --set-interpreter /opt/lib/ld-linux-aarch64.so.1 --force-rpath --set-rpath /opt/lib function/bootstrap
  nuke-refs function/bootstrap
  bash ${self}/layer/zip-tree.sh function $out
''
