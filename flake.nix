{
  description = "constel: deploy a NixOS fleet from its nixosConfigurations";

  # No inputs: the library is plain builtins, the module needs only the
  # `lib` of the NixOS that evaluates it.
  outputs = { self }: import ./nix { };
}
