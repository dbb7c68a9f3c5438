# One simulated NixOS system (tests/fleet). No nixpkgs: plain derivations,
# built with /bin/sh on x86_64-linux and with the aarch64 /bin/busybox
# (under qemu-user) on aarch64-linux.  See tests/fleet/README.md.
#
#   import ./system.nix { name = "alpha"; host = fleet.hosts.alpha; }
#   host = { arch; generation; knob; services = { name = port; }; payload = null | { size_mb; paths; };
#            shared_payload = null | { size_mb; paths; };
#            eval_cost = null | { seconds; mb; }; files ? { "NAME" = TEXT; } (under etc/) }
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
  sw = mk "sw" "fleet-sw-${arch}" {
    listenPy = builtins.readFile ./listen.py;
    systemctlSh = builtins.readFile ./systemctl.sh;
  };
  activation = mk "activation" "fleet-activation-${arch}" {
    switchSh = builtins.readFile ./switch.sh;
  };

  # Per host and generation; files = { "NAME" = TEXT; } (nixos.nix) go under etc/.
  files = host.files or { };
  fileNames = builtins.attrNames files;
  etc = mk "etc" "etc-${name}-gen${gen}" ({
    hostName = name;
    generation = gen;
    services = serviceLines;
    # the units the system declares: one per service, and fleet-sidecar
    # (failed with the knob `unitfail`)
    units = builtins.concatStringsSep "\n"
      ((map (n: "${n}.service") (builtins.attrNames (host.services or { }))) ++ [ "fleet-sidecar.service" ]);
  } // (if files == { } then { } else {
    args = (if isArm then [ "sh" ] else [ ]) ++ [ "-c" (builtins.readFile ./build.sh + "\n" + builtins.readFile ./etcfiles.sh) ];
    etcNames = builtins.concatStringsSep " " fileNames;
  } // builtins.listToAttrs (builtins.genList
    (i: { name = "etcFile${toString i}"; value = files.${builtins.elemAt fileNames i}; })
    (builtins.length fileNames))));

  # Optional bulk (benchmarks): stable across generations. The host's own
  # (payload), and the same paths on every host of the architecture
  # (shared_payload: what a binary cache such as cache.nixos.org holds).
  bulk = prefix: p:
    if p == null then [ ]
    else
      let
        n = p.paths;
        bytes = p.size_mb * 1048576 / n;
      in
      builtins.genList
        (i: mk "payload" "${prefix}-${toString i}" { inherit bytes; })
        n;
  payload = bulk "payload-${name}" (host.payload or null)
    ++ bulk "payload-shared-${arch}" (host.shared_payload or null);

  # The cost of evaluating a NixOS system (README.md, "Evaluation cost"):
  # `mb` megabytes of small values kept reachable from the system (as the
  # module fixpoint is) until the evaluator exits, and CPU spent on
  # short-lived values (the garbage collector's work grows with what is
  # kept, as it does for NixOS), `seconds` in all on the machine the
  # constants were measured on. Nothing of it reaches a derivation: the
  # store paths are the same with or without a cost.
  cost = host.eval_cost or null;
  valuesPerMB = 13500;
  chunksPerSecond = 6500;
  secondsPerMB = 0.0003;
  kept = builtins.genList (i: i) (cost.mb * valuesPerMB);
  chunks = let s = cost.seconds - cost.mb * secondsPerMB; in
    if s <= 0 then 0 else builtins.floor (s * chunksPerSecond);
  burn = builtins.foldl'
    (a: j: a + builtins.foldl' (b: i: b + i) 0 (builtins.genList (i: i + j) 1000))
    0 (builtins.genList (j: j) chunks);

  toplevel = mk "toplevel" "nixos-system-${name}-gen${gen}" {
    inherit sw etc activation payload knob ports;
    hostName = name;
    generation = gen;
  };
  # One line on the evaluator's stderr per evaluation of the system: tests
  # count evaluations with it.
  traced = builtins.trace "fleet: evaluating ${name} gen${gen}" toplevel;
  costed = if cost == null then traced
    else builtins.seq burn (builtins.seq (builtins.length kept) traced) // { fleetEvalCost = kept; };
in
if knob == "evalfail" then
  builtins.seq costed (throw "evalfail knob: ${name} does not evaluate")
else costed
