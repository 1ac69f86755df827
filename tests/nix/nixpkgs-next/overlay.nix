final: _: { vips = final.callPackage ./base/pkgs/vips-8.18.nix { }; }
