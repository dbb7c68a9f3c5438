# The cloud host: the gateway, in front of storage; it needs DNS first.
{ ... }:
{
  imports = [ ../modules/gateway.nix ];
  networking.hostName = "pegasus";
  nixpkgs.hostPlatform = "x86_64-linux";
  constel.uses = [ "jellyfin" "galactica/grafana" "dns" ];
  constel.wants = [ "restic" ];
}
