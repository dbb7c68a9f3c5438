# The health gate after a switch: a unit the new system fails, an HTTP
# check answering 500 (and 200), a command check on the host, a local
# check; each failure restores the host and names the check with its last
# output. A host degraded before the deploy is reported, and skipped with
# --require-healthy.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
health_setup
grep -q "health: HTTP check of 'auth' (GET /healthz on port 9091, expecting 200) passes" \
	"$LOGS/alpha.log" || fail "alpha's HTTP check did not run: $(cat "$LOGS/alpha.log")"
grep -q "health: check 'systemctl is-active web.service' passes" "$LOGS/alpha.log" ||
	fail "alpha's command check did not run"
grep -q "health: local check 'test \"\$1\" = beta" "$LOGS/beta.log" || fail "beta's local check did not run"
gen1=$(current alpha)

# gate_restores FILE HOST TEXT PREVIOUS ARGS...: a deploy of HOST (report in
# FILE) fails its gate, HOST is rolled back onto PREVIOUS and the error says TEXT
gate_restores() {
	_f=$1 _h=$2 _t=$3 _p=$4
	shift 4
	cj "$_f" "$_h" "$@"
	[ "$rc" = 1 ] || fail "exit $rc after a failed gate ($_t)"
	GATE_TEXT=$_t
	export GATE_TEXT
	jq_py "$_f" "hosts['$_h']['status'] == 'rolled-back' and __import__('os').environ['GATE_TEXT'] in hosts['$_h']['error']" ||
		fail "$_h: $(cat "$_f")"
	[ "$(current "$_h")" = "$_p" ] || fail "$_h does not run its previous system again"
}

note "alpha's new system fails a unit: the gate restores it"
fleet_commit alpha=unitfail
gate_restores "$R.1" alpha "units did not pass within 4s: unit failed since the switch: fleet-sidecar.service" "$gen1"
[ "$(fleet_ssh alpha systemctl is-system-running)" = running ] || fail "alpha is still degraded"

note "alpha's new system answers 500 on /healthz: restored; then 200 passes"
fleet_commit alpha=http500
gate_restores "$R.2" alpha "answered 500, not 200" "$gen1"
fleet_commit --only alpha
cj "$R.3" alpha
[ "$rc" = 0 ] || fail "exit $rc with HTTP 200: $(cat "$R.3")"

note "beta's command check fails: restored, its output in the report"
echo "disk full" >"$(fleet_host_dir beta)/varlib/fleet/broken"
beta1=$(current beta)
fleet_commit --only beta
gate_restores "$R.4" beta "check 'if [ -e /var/lib/fleet/broken ]" "$beta1"
jq_py "$R.4" '"exit 1: broken: disk full" in hosts["beta"]["error"]' || fail "beta: $(cat "$R.4")"
jq_py "$R.4" '"the restored system fails its health gate too" in hosts["beta"]["error"]' ||
	fail "beta: the restored system's gate: $(cat "$R.4")"
rm -f "$(fleet_host_dir beta)/varlib/fleet/broken"

note "gamma is degraded before the deploy: skipped with --require-healthy, reported without"
fleet_exec gamma sh -c 'echo failed >/run/fleet/units/gatus.service'
gamma1=$(current gamma)
fleet_commit --only gamma
cj "$R.5" gamma --require-healthy
[ "$rc" = 1 ] || fail "exit $rc for a degraded host with --require-healthy"
jq_py "$R.5" 'hosts["gamma"]["status"] == "skipped" and "degraded before the deploy (failed units: gatus.service)" in hosts["gamma"]["error"]' ||
	fail "gamma: $(cat "$R.5")"
[ "$(current gamma)" = "$gamma1" ] || fail "gamma was changed with --require-healthy"
cj "$R.6" gamma
[ "$rc" = 0 ] || fail "exit $rc for a degraded host: $(cat "$R.6")"
grep -q "gamma the host is degraded before the deploy (failed units: gatus.service)" "$R.6.err" ||
	fail "the degraded host was not reported: $(cat "$R.6.err")"
echo "PASS"
