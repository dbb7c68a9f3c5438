# The storage server: media and backups.
{ ... }:
{
  imports = [ ../modules/media.nix ../modules/backup.nix ];
  networking.hostName = "galactica";
  nixpkgs.hostPlatform = "x86_64-linux";
  constel.services.grafana = 3000;
}
