# A deploy evaluates and builds as it goes (deploy/stream.c): a host whose
# system is built and whose providers are done is activated while another
# host is still being evaluated; a host that does not evaluate or build
# fails alone, its dependents skipped, the others deployed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns
fleet_up "$SMALL"
INV=$FLEET_DIR/stream.yaml
# slow first: the evaluation still takes providers first, and a host that
# takes long to evaluate holds up nobody else
cat >"$INV" <<'Y'
hosts:
  slow: { services: { restic: 8000 } }
  alpha: { services: { auth: 9091 } }
  beta: { services: { web: 8080 }, uses: [auth] }
Y
FLEET_INVENTORY=$INV
fleet_repo --eval-cost slow=8:50
# slow runs on gamma's address: the small fleet has three hosts
sed -n '/^Host gamma$/,/^Host /p' "$FLEET_DIR/ssh_config" | sed '/^Host [^g]/d; s/^Host gamma$/Host slow/' \
	>>"$FLEET_DIR/ssh_config"
R=$FLEET_DIR/r
LOGS=$FLEET_DIR/logs

note "slow evaluates for 8 s: alpha and beta are deployed before it is evaluated"
C --json deploy --eval-jobs 2 --log-dir "$LOGS" >"$R.1" 2>"$R.1.err"
rc=$?
cat "$R.1.err"
[ "$rc" = 0 ] || fail "deploy exited $rc"
jq_py "$R.1" 'all(h["status"] == "deployed" for h in d["hosts"])' || fail "not all deployed: $(cat "$R.1")"
# one printer: the lines are in the order things happened
line() { grep -n "^[0-9:]* $1 *$2" "$R.1.err" | head -n 1 | cut -d: -f1; }
ev=$(line slow evaluated)
for h in alpha beta; do
	d=$(line $h deployed)
	[ -n "$d" ] && [ -n "$ev" ] || fail "no '$h deployed' or 'slow evaluated' line"
	[ "$d" -lt "$ev" ] || fail "$h was deployed only after slow was evaluated (lines $d, $ev)"
done
[ "$(line alpha evaluated)" -lt "$(line beta evaluated)" ] || fail "beta was evaluated before its provider"
grep -q "trace: fleet: evaluating slow" "$LOGS/build.log" || fail "build.log lacks the evaluations: $(cat "$LOGS/build.log")"

note "alpha does not evaluate: it fails alone, beta is skipped, slow is unchanged"
fleet_commit --only alpha alpha=evalfail
C --json deploy --log-dir "$LOGS" >"$R.2" 2>"$R.2.err"
rc=$?
cat "$R.2.err"
[ "$rc" = 1 ] || fail "deploy exited $rc with a host that does not evaluate"
jq_py "$R.2" 'hosts["alpha"]["status"] == "failed" and hosts["alpha"]["phase"] == "evaluate"' ||
	fail "alpha: $(cat "$R.2")"
jq_py "$R.2" 'hosts["beta"]["status"] == "skipped"' || fail "beta: $(cat "$R.2")"
jq_py "$R.2" 'hosts["slow"]["status"] == "unchanged"' || fail "slow: $(cat "$R.2")"

note "alpha does not build: it fails alone, beta is skipped, slow is unchanged"
fleet_commit --only alpha alpha=buildfail
C --json deploy --log-dir "$LOGS" >"$R.3" 2>"$R.3.err"
rc=$?
cat "$R.3.err"
[ "$rc" = 1 ] || fail "deploy exited $rc with a host that does not build"
jq_py "$R.3" 'hosts["alpha"]["status"] == "failed" and hosts["alpha"]["phase"] == "build"' ||
	fail "alpha: $(cat "$R.3")"
jq_py "$R.3" 'hosts["beta"]["status"] == "skipped"' || fail "beta: $(cat "$R.3")"
jq_py "$R.3" 'hosts["slow"]["status"] == "unchanged"' || fail "slow: $(cat "$R.3")"
echo "ok"
