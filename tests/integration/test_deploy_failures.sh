# constel deploy when things go wrong: a failing activation (auto rollback),
# a service that does not come up (health gate), an activation that cuts the
# network (magic rollback), one that hangs (activation timeout), and
# --rollback-fleet. Every time: the host is restored by generation number,
# its dependents are skipped, and the exit status is 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
deploy_setup
R=$FLEET_DIR/r
cj "$R.0"
[ "$rc" = 0 ] || fail "first deploy exited $rc"

# restored HOST GEN: HOST runs generation GEN again and the failed one is gone
restored() {
	[ "$(current $1)" = "$(readlink -f "$FLEET_DIR/hosts/$1/nix/var/nix/profiles/system-$2-link")" ] ||
		fail "$1 does not run generation $2 again"
	[ "$(gens $1)" = "$3" ] || fail "$1 generations: $(gens $1), expected $3"
}

note "beta fails to activate: restored to generation 1, gamma skipped, alpha deployed"
fleet_commit beta=fail
cj "$R.1"
[ "$rc" = 1 ] || fail "exit $rc after a failed host"
jq_py "$R.1" 'd["result"] == "failed"' || fail "$(cat "$R.1")"
jq_py "$R.1" 'hosts["beta"]["status"] == "rolled-back" and hosts["beta"]["generation"] == 1' ||
	fail "beta: $(cat "$R.1")"
jq_py "$R.1" 'hosts["gamma"]["status"] == "skipped" and "beta" in hosts["gamma"]["error"]' ||
	fail "gamma: $(cat "$R.1")"
jq_py "$R.1" 'hosts["alpha"]["status"] == "deployed"' || fail "alpha: $(cat "$R.1")"
restored beta 1 "1 "
grep -q 'last 20 lines' "$R.1.err" || fail "no log tail for the failed host"

note "alpha's service does not come up: the health gate restores it"
fleet_commit alpha=noservice
cj "$R.2" alpha --health-timeout 3
[ "$rc" = 1 ] || fail "exit $rc after a failed health gate"
jq_py "$R.2" 'hosts["alpha"]["status"] == "rolled-back" and "health gate" in hosts["alpha"]["error"]' ||
	fail "alpha: $(cat "$R.2")"
restored alpha 2 "1 2 "
wait_until 5 port_open "$(fleet_addr alpha)" 9091 || fail "alpha's service is not back"

note "beta cuts its own network: not confirmed, the watchdog restores it, it is reachable again"
fleet_commit beta=cutnet
start=$(date +%s)
cj "$R.3" beta --confirm-timeout 4
[ "$rc" = 1 ] || fail "exit $rc after cutnet"
jq_py "$R.3" 'hosts["beta"]["status"] == "rolled-back"' || fail "beta: $(cat "$R.3")"
jq_py "$R.3" '"not confirmed" in hosts["beta"]["error"]' || fail "beta: $(cat "$R.3")"
[ $(($(date +%s) - start)) -lt 60 ] || fail "cutnet took $(($(date +%s) - start))s"
restored beta 1 "1 "
fleet_ssh beta true || fail "beta is not reachable after its magic rollback"

note "gamma hangs: the activation timeout restores it"
fleet_commit gamma=hang
cj "$R.4" gamma --activation-timeout 6
[ "$rc" = 1 ] || fail "exit $rc after a hang"
jq_py "$R.4" 'hosts["gamma"]["status"] == "rolled-back" and "timed out" in hosts["gamma"]["error"]' ||
	fail "gamma: $(cat "$R.4")"
restored gamma 1 "1 "

note "--no-auto-rollback leaves a failed host as it is"
fleet_commit beta=fail
cj "$R.5" beta --no-auto-rollback
[ "$rc" = 1 ] || fail "exit $rc"
jq_py "$R.5" 'hosts["beta"]["status"] == "failed"' || fail "beta: $(cat "$R.5")"
[ "$(gens beta)" = "1 2 " ] || fail "beta generations: $(gens beta)"
C rollback beta --log-dir "$LOGS" 2>/dev/null || fail "rollback of beta failed"

note "--rollback-fleet: gamma fails, so alpha and beta go back too (gamma's consumers first)"
fleet_commit gamma=fail
cj "$R.6" --rollback-fleet
[ "$rc" = 1 ] || fail "exit $rc"
for h in alpha beta gamma; do
	jq_py "$R.6" "hosts['$h']['status'] == 'rolled-back'" || fail "$h: $(cat "$R.6")"
done
[ "$(current alpha)" = "$(readlink -f "$FLEET_DIR/hosts/alpha/nix/var/nix/profiles/system-2-link")" ] ||
	fail "alpha was not switched back"
echo "all good"
