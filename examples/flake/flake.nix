# A small fleet in the constellation pattern: a common module every host
# gets, feature modules, tiny host files that say what each host serves
# (constel.services) and needs (constel.uses), and a gateway whose
# upstream list is generated from the registry of the other hosts. The
# inventory is not written anywhere: it is read from the hosts themselves.
#
#   constel -i examples/flake#constellation plan
#   constel -i examples/flake#constellation registry --nix
#
# It runs on constel's simulated fleet (tests/fleet, no nixpkgs here). In a
# real fleet, the two lines marked below become flake inputs:
#
#   inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
#   inputs.constel.url = "github:OWNER/constel";
#   outputs = { self, nixpkgs, constel }: ...
#     nixosSystem = nixpkgs.lib.nixosSystem;
{
  description = "constel example: a fleet in the constellation pattern";

  outputs = { self }:
    let
      constel = import ../../nix { }; # real fleet: the `constel` input
      inherit (import ../../tests/fleet/nix/nixos.nix) nixosSystem; # real fleet: nixpkgs.lib.nixosSystem

      host = name: nixosSystem {
        specialArgs = { inherit self constel; };
        modules = [
          constel.nixosModules.default
          ./modules/common.nix
          (./hosts + "/${name}.nix")
        ];
      };
    in
    {
      nixosConfigurations = {
        galactica = host "galactica";
        pegasus = host "pegasus";
        raptor = host "raptor";
      };

      constellation = constel.lib.inventory {
        inherit (self) nixosConfigurations;
        defaults = { goal = "switch"; };
      };
    };
}
