# Source this (`. tests/fleet/env.sh`) before any Nix command of the tests,
# the demo or the benchmarks. It is the whole Nix configuration they rely
# on, so nothing depends on the machine's nix.conf, a nixbld group or the
# internet: no substituters, no flake registry, no build users (Debian's
# nix-bin defaults to the nixbld group, which a new machine lacks), no
# sandbox, and aarch64 built under qemu-user through extra-platforms.
# constel itself needs none of it beyond what it passes (see
# test_deploy_basic, which runs it without experimental features).
NIX_CONFIG="substituters =
flake-registry = /dev/null
build-users-group =
sandbox = false
experimental-features = nix-command flakes
extra-platforms = aarch64-linux"
export NIX_CONFIG
# no user configuration either (~/.config/nix/nix.conf)
NIX_USER_CONF_FILES=/dev/null
export NIX_USER_CONF_FILES
