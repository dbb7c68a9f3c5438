# SIGINT mid-deploy: constel starts no further host, lets the running
# activation reach its end under the host's watchdog, reports and exits 1.
# Also: an aarch64 host built on the target itself (--build-on target).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
deploy_setup
R=$FLEET_DIR/r
cj "$R.0"
[ "$rc" = 0 ] || fail "first deploy exited $rc"

note "SIGINT while beta's activation hangs: gamma is never started"
# sent twice, 50 ms apart, by one process (as timeout(1) and supervisors do:
# the process, then its group): that is one request, not "interrupted twice"
fleet_commit beta=hang
# started directly, not through a shell function, so that $! is constel itself
"$CONSTEL" -i "$FLEET_DIR/repo/constellation.yaml" --ssh-config "$FLEET_DIR/ssh_config" \
	--json deploy --log-dir "$LOGS" --activation-timeout 8 --parallel 1 >"$R.1" 2>"$R.1.err" &
pid=$!
wait_until 30 grep -qx 'beta 2 switch start' "$FLEET_DIR/order.log" || fail "beta never started"
kill -INT $pid
sleep 0.05
kill -INT $pid
wait $pid
rc=$?
cat "$R.1.err"
[ "$rc" = 1 ] || fail "exit $rc after SIGINT"
jq_py "$R.1" 'hosts["gamma"]["status"] == "skipped"' || fail "gamma: $(cat "$R.1")"
jq_py "$R.1" 'hosts["beta"]["status"] == "rolled-back"' || fail "beta: $(cat "$R.1")"
grep -q 'interrupted' "$R.1.err" || fail "no word of the interruption"
! grep -q 'interrupted twice' "$R.1.err" || fail "one sender's repeat was taken for a second ^C"
! grep -q '^gamma 2' "$FLEET_DIR/order.log" || fail "gamma was activated: $(order)"
[ "$(gens beta)" = "1 " ] || fail "beta left between generations: $(gens beta)"

note "a second SIGINT quits at once; the host's watchdog still restores it"
fleet_commit beta=hang
"$CONSTEL" -i "$FLEET_DIR/repo/constellation.yaml" --ssh-config "$FLEET_DIR/ssh_config" \
	deploy beta --log-dir "$LOGS" --activation-timeout 6 >/dev/null 2>&1 &
pid=$!
wait_until 30 grep -qx 'beta 3 switch start' "$FLEET_DIR/order.log" || fail "beta never started"
kill -INT $pid
sleep 0.5
kill -INT $pid
start=$(date +%s)
wait $pid
rc=$?
[ "$rc" = 1 ] || fail "exit $rc after two SIGINTs"
[ $(($(date +%s) - start)) -le 2 ] || fail "second SIGINT did not quit at once"
wait_until 20 sh -c "[ \"\$(ls $FLEET_DIR/hosts/beta/nix/var/nix/profiles/ | grep -c '^system-.*-link\$')\" = 1 ]" ||
	fail "beta's watchdog did not restore it: $(gens beta)"
[ "$(current beta)" = "$(readlink -f "$FLEET_DIR/hosts/beta/nix/var/nix/profiles/system-1-link")" ] ||
	fail "beta does not run generation 1"

note "gamma (aarch64) built on the target itself"
fleet_commit --only gamma
cj "$R.3" gamma --build-on target
[ "$rc" = 0 ] || fail "build on target exited $rc"
p=$(jq_py "$R.3" 'hosts["gamma"]["path"]')
[ "$p" = "$(fleet_path gamma)" ] || fail "gamma built $p on the target, expected $(fleet_path gamma)"
grep -q 'building on the host' "$LOGS/gamma.log" || fail "gamma was not built on the host"
echo "all good"
