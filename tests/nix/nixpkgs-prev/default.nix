# `import nixpkgs { ... }` with the nixos-25.11 overlay (vips 8.17.3, Rust 1.91.1).
args: import ./base (args // { overlays = [ (import ./overlay.nix) ] ++ args.overlays or [ ]; })
