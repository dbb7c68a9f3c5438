#!/bin/sh
# make demo: the simulated fleet of examples/constellation.yaml, deployed by
# constel: plan, deploy, redeploy (all unchanged), a change that fails on one
# host (restored, its dependents skipped), then the fleet is torn down.
#
# The demo checks what it shows: each deploy's JSON report (stdout; the live
# view goes to stderr) must say what the step promises, else the demo stops
# with the step's name and exits 1. CONSTEL overrides the binary (the test
# of the demo itself, tests/integration/test_demo.sh, passes one that lies).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/fleet/env.sh"
[ "$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces)"; exit 1; }
DIR=$(mktemp -d /tmp/constel-demo.XXXXXX)
cleanup() { "$TOP/tests/fleet/fleet" down "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
C="${CONSTEL:-$TOP/constel} -i $DIR/repo/constellation.yaml --ssh-config $DIR/ssh_config"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
broken() {
	printf '\n\033[1;31mdemo failed at "%s": %s\033[0m\n' "$step" "$*" >&2
	exit 1
}

# expect RC STATUS... : the last report ($DIR/report.json) ended with exit
# status RC, and its hosts, in inventory order, have these statuses
# ("host=status" for the hosts named; the others must be STATUS "*").
expect() {
	want_rc=$1
	shift
	[ "$rc" = "$want_rc" ] || broken "constel exited $rc, expected $want_rc"
	why=$(python3 - "$DIR/report.json" "$@" <<'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except Exception as e:
    print("no JSON report (%s)" % e)
    sys.exit(0)
want = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
default = next((a for a in sys.argv[2:] if "=" not in a), None)
bad = []
for h in doc.get("hosts", []):
    w = want.get(h["name"], default)
    if w is not None and h["status"] != w:
        bad.append("%s is %s, expected %s" % (h["name"], h["status"], w))
if not doc.get("hosts"):
    bad.append("the report lists no host")
print("; ".join(bad))
EOF
)
	[ -z "$why" ] || broken "$why"
}
deploy() {
	$C --json deploy "$@" >"$DIR/report.json"
	rc=$?
}

step="bringing up the simulated fleet"
say "$step (network namespaces, sshd, private Nix stores)"
"$TOP/tests/fleet/fleet" up "$DIR" "$TOP/examples/constellation.yaml" || broken "fleet up failed"
"$TOP/tests/fleet/mkrepo" "$DIR" "$TOP/examples/constellation.yaml" >/dev/null ||
	broken "mkrepo failed"
"$TOP/tests/fleet/fleet" list "$DIR"

step="constel plan"
say "$step"
$C plan || broken "plan exited $?"

step="constel deploy"
say "$step (x86_64 built natively, aarch64 under qemu-user)"
deploy --confirm-timeout 10
expect 0 deployed
echo "exit status 0: every host deployed"

step="constel deploy again"
say "$step: nothing changed, nothing activated"
deploy
expect 0 unchanged
echo "exit status 0: every host unchanged"

step="a failing change"
say "$step: pegasus's activation fails; it is restored, its consumers skipped"
"$TOP/tests/fleet/mkrepo" commit "$DIR" pegasus=fail >/dev/null || broken "mkrepo commit failed"
deploy --confirm-timeout 10
expect 1 galactica=deployed raptor=deployed pegasus=rolled-back viper=skipped cylon=skipped
echo "exit status 1: pegasus rolled back, viper and cylon skipped, the others deployed"

step="constel exec"
say "$step -- cat /run/current-system/nixos-version"
$C exec -- 'cat /run/current-system/nixos-version 2>/dev/null || readlink /run/current-system' ||
	broken "exec exited $?"

say "tearing the fleet down"
echo "demo: every step did what it shows"
