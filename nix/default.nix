# constel's Nix side without flakes: `import ./nix { }` gives what the
# flake (../flake.nix) outputs:
#
#   nixosModules.default   options under `constel.` for one host (module.nix)
#   lib.inventory          a constel inventory from nixosConfigurations (lib.nix)
#   lib.registry           { HOST = { SERVICE = { port; address; }; }; } (lib.nix)
#
# lib.* need nothing but Nix's builtins (no nixpkgs); the module needs the
# `lib` of the NixOS evaluating it.
{ }:
{
  nixosModules.default = ./module.nix;
  lib = import ./lib.nix;
}
