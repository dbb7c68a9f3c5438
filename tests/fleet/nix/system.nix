# One simulated NixOS system (tests/fleet). No nixpkgs: plain derivations,
# built with /bin/sh on x86_64-linux and with the aarch64 /bin/busybox
# (under qemu-user) on aarch64-linux.  See tests/fleet/README.md.
#
#   import ./system.nix { name = "alpha"; host = fleet.hosts.alpha; }
#   host = { arch; generation; knob; services = { name = port; }; payload = null | { size_mb; paths; }; }
{ name, host, salt ? "" }:
let
  arch = host.arch;
  isArm = arch == "aarch64-linux";
  gen = toString host.generation;
  knob = if host.knob or null == null then "" else host.knob;
  ports = builtins.concatStringsSep " " (map toString (builtins.attrValues (host.services or { })));
  serviceLines = builtins.concatStringsSep "\n"
    (builtins.attrValues (builtins.mapAttrs (n: p: "${n} ${toString p}") (host.services or { })));

  mk = kind: drvName: attrs: derivation ({
    name = drvName;
    system = arch;
    builder = if isArm then "/bin/busybox" else "/bin/sh";
    args = (if isArm then [ "sh" ] else [ ]) ++ [ "-c" (builtins.readFile ./build.sh) ];
    inherit kind;
  } // (if salt == "" then { } else { inherit salt; }) // attrs);

  # Stable per architecture: shared by every host and generation.
  sw = mk "sw" "fleet-sw-${arch}" { listenPy = builtins.readFile ./listen.py; };
  activation = mk "activation" "fleet-activation-${arch}" {
    switchSh = builtins.readFile ./switch.sh;
  };

  # Per host and generation.
  etc = mk "etc" "etc-${name}-gen${gen}" {
    hostName = name;
    generation = gen;
    services = serviceLines;
  };

  # Optional bulk (benchmarks): stable across generations.
  payload =
    if host.payload or null == null then [ ]
    else
      let
        n = host.payload.paths;
        bytes = host.payload.size_mb * 1048576 / n;
      in
      builtins.genList
        (i: mk "payload" "payload-${name}-${toString i}" { inherit bytes; })
        n;
in
mk "toplevel" "nixos-system-${name}-gen${gen}" {
  inherit sw etc activation payload knob ports;
  hostName = name;
  generation = gen;
}
