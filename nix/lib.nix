# constel.lib: builtins only, so that it runs where nixpkgs is not (and is
# cheap: it reads each host's `config.constel`, never its system).
#
# Positions: the values of a host's `config.constel` are passed through
# with `removeAttrs` and `//`, which keep where Nix saw them defined, so
# that constel can name the file, line and column of a bad value
# (builtins.unsafeGetAttrPos). What this file makes itself goes through
# `builtins.mapAttrs`, which keeps no position: an error about it names the
# attribute path only, never a line of this file.
let
  noPos = builtins.mapAttrs (_: v: v);

  # An attribute set without its null values (removeAttrs keeps positions).
  dropNulls = s: builtins.removeAttrs s (builtins.filter (k: s.${k} == null) (builtins.attrNames s));

  # The system of a configuration: nixpkgs.hostPlatform (a string, or the
  # elaborated platform NixOS makes of it), else the older nixpkgs.system.
  systemOf = config:
    let p = config.nixpkgs.hostPlatform or null; in
    if builtins.isString p then p
    else if builtins.isAttrs p && p ? system then p.system
    else config.nixpkgs.system or null;

  # The module's camelCase options and the inventory's keys.
  renames = {
    dependsOn = "depends_on";
    confirmTimeout = "confirm_timeout";
    healthTimeout = "health_timeout";
    localCheck = "local_check";
  };

  # A service as the inventory writes it: a port, or { port; address; health; }
  # without the module's nulls; the module's { port; address = null; } is the port alone.
  serviceOf = s:
    let d = dropNulls s; in
    if builtins.attrNames d == [ "port" ] then d.port else d;

  hostOf = name: nixos:
    let
      c = nixos.config.constel or { };
      kept = builtins.removeAttrs c (builtins.attrNames renames);
      renamed = noPos (builtins.listToAttrs (map (k: { name = renames.${k}; value = c.${k}; })
        (builtins.filter (k: c ? ${k}) (builtins.attrNames renames))));
      services = if c ? services && builtins.isAttrs c.services then {
        services = c.services // noPos (builtins.mapAttrs (_: serviceOf)
          (builtins.removeAttrs c.services (builtins.filter (k: !(builtins.isAttrs c.services.${k}))
            (builtins.attrNames c.services))));
      } else { };
      system = systemOf nixos.config;
      arch = if system == null then { } else noPos { arch = system; };
    in
    dropNulls (kept // services // renamed // arch);

  inventory = { nixosConfigurations, defaults ? { }, builders ? { }, hosts ? null }:
    let
      names = if hosts == null then builtins.attrNames nixosConfigurations else hosts;
      missing = builtins.filter (n: !(nixosConfigurations ? ${n})) names;
      wanted = builtins.intersectAttrs
        (builtins.listToAttrs (map (n: { name = n; value = null; }) names))
        nixosConfigurations;
    in
    if missing != [ ] then
      throw "constel.lib.inventory: hosts names ${builtins.toJSON missing}, not in nixosConfigurations"
    else
      noPos {
        inherit defaults builders;
        hosts = builtins.mapAttrs hostOf wanted;
      };

  # { HOST = { SERVICE = { port; address; }; }; }: what a gateway needs to
  # proxy to the services of other hosts. A service's address is its own,
  # else its host's `constel.address`, else the host's name (as constel
  # connects to it).
  registry = nixosConfigurations:
    builtins.mapAttrs
      (name: nixos:
        let
          c = nixos.config.constel or { };
          host = if (c.address or null) == null then name else c.address;
        in
        builtins.mapAttrs
          (_: s:
            if builtins.isAttrs s then {
              port = s.port;
              address = if (s.address or null) == null then host else s.address;
            } else { port = s; address = host; })
          (c.services or { }))
      nixosConfigurations;
in
{
  inherit inventory registry;
}
