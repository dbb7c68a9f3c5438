# A stand-in for nixpkgs.lib.nixosSystem on the simulated fleet (no
# nixpkgs here): modules are evaluated as NixOS evaluates them, each a
# function of { config, lib, pkgs, ... } and the specialArgs (or a plain
# set, or a path to one), with `imports`, and their `config` merged
# (attribute sets by name, lists concatenated, otherwise the last module
# wins). A module's `options` are not evaluated (they need nixpkgs' lib);
# what NixOS would check with them, constel checks in the inventory. So a
# host's `config.constel` is what it is on NixOS: a plain attribute set
# shaped like the options of constel's module, each value where the
# module that set it wrote it (builtins.unsafeGetAttrPos finds it).
#
#   (import ./nixos.nix).nixosSystem { modules = [ ... ]; specialArgs = { ... }; }
#
# The system is tests/fleet/nix/system.nix's, from the configuration:
# networking.hostName, nixpkgs.hostPlatform (or nixpkgs.system), the ports
# of constel.services, fleet.generation and fleet.knob (mkrepo's knobs),
# and environment.etc.NAME.text (files under etc/ of the system).
let
  lib = throw "the simulated fleet has no nixpkgs lib: a module's options are not evaluated";

  merge = a: b:
    a // b // builtins.mapAttrs
      (k: _:
        let x = a.${k}; y = b.${k}; in
        if builtins.isAttrs x && builtins.isAttrs y && !(y ? outPath) then merge x y
        else if builtins.isList x && builtins.isList y then x ++ y
        else y)
      (builtins.intersectAttrs a b);

  nixosSystem = { modules, specialArgs ? { } }:
    let
      args = specialArgs // { inherit config lib; pkgs = { }; modulesPath = null; };
      load = m:
        let
          f = if builtins.isPath m || builtins.isString m then import m else m;
          r = if builtins.isFunction f then f args else f;
          own = if r ? config || r ? options then r.config or { }
            else builtins.removeAttrs r [ "imports" "_file" "key" "disabledModules" ];
        in
        builtins.concatMap load (r.imports or [ ]) ++ [ own ];
      config = merge (builtins.foldl' merge { } (builtins.concatMap load modules)) {
        system.build.toplevel = toplevel;
      };
      c = config.constel or { };
      platform = config.nixpkgs.hostPlatform or config.nixpkgs.system or "x86_64-linux";
      etc = config.environment.etc or { };
      toplevel = import ./system.nix {
        name = config.networking.hostName;
        host = {
          arch = if builtins.isString platform then platform else platform.system;
          generation = config.fleet.generation or 1;
          knob = config.fleet.knob or null;
          services = builtins.mapAttrs (_: s: if builtins.isAttrs s then s.port else s) (c.services or { });
          payload = null;
          eval_cost = null;
          files = builtins.mapAttrs (_: f: f.text) etc;
        };
      };
    in
    { inherit config; };
in
{
  inherit nixosSystem;
}
