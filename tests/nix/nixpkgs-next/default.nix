# `import nixpkgs { ... }` with the vips 8.18 overlay.
args: import ./base (args // { overlays = [ (import ./overlay.nix) ] ++ args.overlays or [ ]; })
