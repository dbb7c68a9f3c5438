#!/bin/sh
# make demo: the simulated fleet of examples/constellation.yaml, deployed by
# constel: plan, deploy, redeploy (all unchanged), a change that fails on one
# host (restored, its dependents skipped), then the fleet is torn down.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/fleet/env.sh"
[ "$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces)"; exit 1; }
DIR=$(mktemp -d /tmp/constel-demo.XXXXXX)
cleanup() { "$TOP/tests/fleet/fleet" down "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
C="$TOP/constel -i $DIR/repo/constellation.yaml --ssh-config $DIR/ssh_config"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "bringing up the simulated fleet (network namespaces, sshd, private Nix stores)"
"$TOP/tests/fleet/fleet" up "$DIR" "$TOP/examples/constellation.yaml" || exit 1
"$TOP/tests/fleet/mkrepo" "$DIR" "$TOP/examples/constellation.yaml" >/dev/null || exit 1
"$TOP/tests/fleet/fleet" list "$DIR"

say "constel plan"
$C plan

say "constel deploy (x86_64 built natively, aarch64 under qemu-user)"
$C deploy --confirm-timeout 10
echo "exit status: $?"

say "constel deploy again: nothing changed, nothing activated"
$C deploy
echo "exit status: $?"

say "a change whose activation fails on pegasus: it is restored, its consumers skipped"
"$TOP/tests/fleet/mkrepo" commit "$DIR" pegasus=fail >/dev/null
$C deploy --confirm-timeout 10
echo "exit status: $? (1: a host failed and was rolled back)"

say "constel exec -- cat /run/current-system/nixos-version"
$C exec -- 'cat /run/current-system/nixos-version 2>/dev/null || readlink /run/current-system'

say "tearing the fleet down"
