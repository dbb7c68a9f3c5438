# Feature: the front door. Its upstreams are generated from the registry
# of every other host's services (constel.lib.registry), so a service
# added to a host file reaches the gateway with no second list to edit.
{ config, self, constel, ... }:
let
  me = config.networking.hostName;
  others = builtins.removeAttrs (constel.lib.registry self.nixosConfigurations) [ me ];
  line = host: name: s: "${name}.${host} ${s.address}:${toString s.port}";
  lines = builtins.concatLists (builtins.attrValues (builtins.mapAttrs
    (host: services: builtins.attrValues (builtins.mapAttrs (line host) services))
    others));
in
{
  constel.services.gateway = 8443;
  environment.etc."gateway/upstreams".text = builtins.concatStringsSep "\n" lines;
}
