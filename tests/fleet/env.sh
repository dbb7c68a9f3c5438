# Source this (`. tests/fleet/env.sh`) before any Nix command against the
# simulated fleet: nothing may try to reach the internet.
NIX_CONFIG="substituters =
flake-registry = /dev/null
experimental-features = nix-command flakes
extra-platforms = aarch64-linux"
export NIX_CONFIG
