# The router: DNS for the fleet, on a small aarch64 board.
{ ... }:
{
  networking.hostName = "raptor";
  nixpkgs.hostPlatform = "aarch64-linux";
  constel.services.dns = 5353;
}
