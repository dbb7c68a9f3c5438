# constel's NixOS module: where one host says what the inventory needs
# (docs/inventory.md, "The inventory in Nix"). constel.lib.inventory reads
# these options from each of nixosConfigurations; the architecture is the
# host's nixpkgs.hostPlatform. Only the standard module system (lib.mkOption,
# lib.types): the NixOS evaluating the host gives `lib`.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  nullOr = t: description: mkOption { type = types.nullOr t; default = null; inherit description; };
  names = description: mkOption { type = types.listOf types.str; default = [ ]; inherit description; };
  service = types.either types.port (types.submodule {
    options = {
      port = mkOption { type = types.port; description = "The port the service listens on."; };
      address = nullOr types.str "Where other hosts reach the service; null: the host's address.";
      health = nullOr (types.submodule {
        options = {
          path = mkOption { type = types.str; description = "The URL path asked on the host, e.g. /healthz."; };
          status = mkOption { type = types.ints.between 100 599; default = 200; description = "The HTTP status that passes."; };
        };
      }) "An HTTP check made from the host after every switch; null: the port alone.";
    };
  });
in
{
  options.constel = {
    services = mkOption {
      type = types.attrsOf service;
      default = { };
      example = { gatus = 8090; auth = { port = 9091; address = "10.0.0.2"; }; };
      description = "What this host serves: name → port, or name → { port; address; }. Every port must answer after a deploy.";
    };
    uses = names "Services of other hosts this host needs (`name` or `host/name`): their hosts are deployed first.";
    wants = names "Like uses, recorded and drawn, with no ordering.";
    dependsOn = names "Hosts (or `@tag`s) deployed before this one.";
    tags = names "Groups for `--on @tag` and dependsOn.";
    address = nullOr types.str "Where SSH connects; null: the host's name (through the ssh config).";
    user = nullOr types.str "The SSH user; null: the inventory's default, else the ssh config, else root.";
    become = nullOr types.str "How commands that need root become root: sudo (the default for a user other than root), doas, none, or a command line; null: the inventory's default.";
    substitute = nullOr types.bool "Whether the host first fetches what it lacks from its own substituters before constel pushes the rest; null: the inventory's default (true).";
    port = nullOr types.port "The SSH port; null: the ssh config, else 22.";
    build = nullOr types.str "Where the system is built: local, target, a host of the inventory or user@address[:port].";
    goal = nullOr (types.enum [ "switch" "boot" "test" "dry-activate" ]) "What activation does; null: the inventory's default.";
    confirmTimeout = nullOr types.ints.positive "Seconds for the magic rollback confirmation; null: the inventory's default.";
    healthTimeout = nullOr types.ints.unsigned "Seconds for every service port to answer; null: the inventory's default.";
    check = names "Commands run on the host after every switch; each must exit 0.";
    localCheck = names "Commands run where constel runs after every switch (the host's name and address as $1 and $2); each must exit 0.";
  };
}
