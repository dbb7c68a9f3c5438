# Helpers for the deploy tests (sourced after lib.sh).
#   deploy_setup          fleet of tests/fleet/examples/small.yaml, repo, order log
#   health_setup          fleet of tests/fleet/examples/health.yaml, repo, deployed once
#   cj FILE ...           constel --json deploy ..., report in FILE, exit status in $rc
#   jq_py FILE EXPR       evaluate a python expression on the JSON in FILE (as `d`)
#   order                 the fleet-wide activation order (HOST GEN GOAL start|done)
#   gens HOST             the generation numbers of HOST's system profile

deploy_setup() {
	need_root_and_netns
	need_aarch64
	fleet_up "$SMALL"
	fleet_repo
	: >"$FLEET_DIR/order.log"
	for h in alpha beta gamma; do
		mkdir -p "$FLEET_DIR/hosts/$h/varlib/fleet"
		ln -sf "$FLEET_DIR/order.log" "$FLEET_DIR/hosts/$h/varlib/fleet/order.log"
	done
	LOGS=$FLEET_DIR/logs
}

health_setup() {
	need_root_and_netns
	fleet_up "$TOP/tests/fleet/examples/health.yaml"
	fleet_repo
	LOGS=$FLEET_DIR/logs
	R=$FLEET_DIR/r
	cj "$R.0"
	[ "$rc" = 0 ] || fail "first deploy exited $rc: $(cat "$R.0")"
}

cj() {
	_out=$1
	shift
	C --json deploy --log-dir "$LOGS" "$@" >"$_out" 2>"$_out.err"
	rc=$?
	cat "$_out.err" >&2
}

jq_py() {
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
hosts = {h["name"]: h for h in d.get("hosts", [])} if isinstance(d, dict) else {}
v = eval(sys.argv[2])
if v is True: sys.exit(0)
if v is False: sys.exit(1)
print(v)
' "$@"
}

order() {
	cat "$FLEET_DIR/order.log"
}

gens() {
	ls "$FLEET_DIR/hosts/$1/nix/var/nix/profiles/" | sed -n 's/^system-\([0-9]*\)-link$/\1/p' |
		sort -n | tr '\n' ' '
}

# the line number of the first line of the order log matching $1
at() {
	grep -n -x "$1" "$FLEET_DIR/order.log" | head -n 1 | cut -d: -f1
}
