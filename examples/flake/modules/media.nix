# Feature: a media server (the port is the feature's, the host only imports it).
{ ... }:
{
  constel.services.jellyfin = 8096;
  constel.tags = [ "storage" ];
}
