# constel deploy on the simulated fleet: ordered full deploy, unchanged
# redeploy, one host, --with-deps, rollback and rollback --to, dry run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
deploy_setup
R=$FLEET_DIR/r

note "full deploy: providers (alpha, beta) before their consumer (gamma, aarch64)"
cj "$R.1"
[ "$rc" = 0 ] || fail "deploy exited $rc"
jq_py "$R.1" 'd["result"] == "ok"' || fail "result: $(cat "$R.1")"
for h in alpha beta gamma; do
	jq_py "$R.1" "hosts['$h']['status'] == 'deployed' and hosts['$h']['generation'] == 1" ||
		fail "$h: $(cat "$R.1")"
	[ "$(current $h)" = "$(fleet_path $h)" ] || fail "$h does not run what was built"
	# one session for the work, one new session that proves the new system lets us in
	jq_py "$R.1" "hosts['$h']['sessions'] == 2" || fail "$h sessions: $(cat "$R.1")"
done
# what was deployed stays alive in this machine's store (deploy/gcroots.h)
for h in alpha beta gamma; do
	root=$(ls "$XDG_STATE_HOME/constel/gcroots/$h/" | head -n 1)
	[ -n "$root" ] || fail "$h's system has no GC root here"
	[ "$(readlink -f "$XDG_STATE_HOME/constel/gcroots/$h/$root")" = "$(fleet_path $h)" ] ||
		fail "$h's root is not its system"
	! nix-store --delete "$(fleet_path $h)" >/dev/null 2>&1 || fail "$h's system could be deleted here"
done
# seconds are rounded to milliseconds in the JSON text itself
grep '"seconds"' "$R.1" | grep -Evq '"seconds": [0-9]+(\.[0-9]{1,3})?,?$' &&
	fail "seconds not in milliseconds: $(grep '"seconds"' "$R.1")"
# progress says what a waiting host waits for, and how many paths really go
grep -Eq ' gamma +waits for (alpha, beta|beta, alpha)$' "$R.1.err" || fail "no wait line: $(cat "$R.1.err")"
grep -Eq ' alpha +sending all [1-9][0-9]* paths' "$R.1.err" || fail "no count of sent paths"
gs=$(at 'gamma 1 switch start')
[ -n "$gs" ] && [ "$(at 'alpha 1 switch done')" -lt "$gs" ] &&
	[ "$(at 'beta 1 switch done')" -lt "$gs" ] || fail "order: $(order)"
port_open "$(fleet_addr gamma)" 8090 || fail "gamma's service is not listening"
fleet_exec gamma sh -c 'file -L /run/current-system/sw/bin/busybox' | grep -q 'ARM aarch64' ||
	note "(gamma's system has no sw/bin/busybox to inspect)"

note "redeploy: every host unchanged, no new generation, one session each"
: >"$FLEET_DIR/order.log"
cj "$R.2"
[ "$rc" = 0 ] || fail "redeploy exited $rc"
for h in alpha beta gamma; do
	jq_py "$R.2" "hosts['$h']['status'] == 'unchanged' and hosts['$h']['sessions'] == 1" ||
		fail "$h: $(cat "$R.2")"
	[ "$(gens $h)" = "1 " ] || fail "$h generations: $(gens $h)"
done
[ ! -s "$FLEET_DIR/order.log" ] || fail "redeploy activated something: $(order)"
! grep -q 'sending' "$R.2.err" || fail "an unchanged host was sent paths"

note "one host: only alpha is evaluated, copied and activated"
fleet_commit --only alpha
: >"$FLEET_DIR/order.log"
cj "$R.3" alpha
[ "$rc" = 0 ] || fail "deploy alpha exited $rc"
jq_py "$R.3" 'len(d["hosts"]) == 1 and hosts["alpha"]["generation"] == 2' || fail "$(cat "$R.3")"
[ "$(order | cut -d' ' -f1 | sort -u)" = alpha ] || fail "others touched: $(order)"
grep -Eq ' alpha +sending [1-9][0-9]* of [1-9][0-9]* paths \(the host has the others\)' "$R.3.err" ||
	fail "no count of the paths sent: $(cat "$R.3.err")"

note "--with-deps: gamma pulls in alpha and beta, and goes last"
fleet_commit
: >"$FLEET_DIR/order.log"
cj "$R.4" --with-deps gamma
[ "$rc" = 0 ] || fail "deploy --with-deps gamma exited $rc"
jq_py "$R.4" 'len(d["hosts"]) == 3' || fail "$(cat "$R.4")"
[ "$(at 'alpha 3 switch done')" -lt "$(at 'gamma 2 switch start')" ] || fail "order: $(order)"

note "rollback: alpha back to generation 2, then --to 1"
C --json rollback alpha --log-dir "$LOGS" >"$R.5" || fail "rollback exited $?: $(cat "$R.5")"
jq_py "$R.5" 'hosts["alpha"]["generation"] == 2' || fail "$(cat "$R.5")"
[ "$(current alpha)" = "$(readlink -f "$FLEET_DIR/hosts/alpha/nix/var/nix/profiles/system-2-link")" ] ||
	fail "alpha does not run generation 2"
C --json rollback alpha --to 1 --log-dir "$LOGS" >"$R.6" || fail "rollback --to 1 failed"
jq_py "$R.6" 'hosts["alpha"]["generation"] == 1' || fail "$(cat "$R.6")"
# recorded as what it was: a rollback, on the host and in the git notes
fleet_exec alpha cat /var/lib/constel/deployment.json | grep -q '"result":"rollback"' ||
	fail "alpha's record: $(fleet_exec alpha cat /var/lib/constel/deployment.json)"
C --json log alpha >"$R.log" || fail "constel log failed"
jq_py "$R.log" 'sum(1 for e in d if e["result"] == "rollback" and e["host"] == "alpha") == 2' ||
	fail "notes of the rollbacks: $(cat "$R.log")"
C rollback alpha --to 9 --log-dir "$LOGS" 2>"$R.7" && fail "rollback to a missing generation succeeded"
grep -q 'generation 9 does not exist' "$R.7" || fail "$(cat "$R.7")"

note "dry-activate: shows what it would do, changes and records nothing"
fleet_commit --only beta
before=$(fleet_exec beta cat /var/lib/constel/deployment.json)
C deploy beta --goal dry-activate --log-dir "$LOGS" >/dev/null 2>"$R.dry" || fail "dry-activate: $(tail -5 "$R.dry")"
grep -q 'would activate' "$R.dry" || fail "dry-activate's output is not in the summary: $(cat "$R.dry")"
[ "$(fleet_exec beta cat /var/lib/constel/deployment.json)" = "$before" ] || fail "dry-activate wrote a record"
C --json log beta >"$R.log" || fail "constel log failed"
dry=$(fleet_path beta)
jq_py "$R.log" "not any(e['path'] == '$dry' for e in d)" ||
	fail "dry-activate left a note: $(cat "$R.log")"

note "dry run: builds, touches no host"
fleet_commit
: >"$FLEET_DIR/order.log"
C deploy --dry-run >/dev/null 2>&1 || fail "dry run failed"
[ ! -s "$FLEET_DIR/order.log" ] || fail "dry run activated: $(order)"

note "constel needs no experimental features in Nix's configuration"
fleet_commit --only alpha
bare=$(printf '%s\n' "$NIX_CONFIG" | grep -v experimental-features)
NIX_CONFIG=$bare C --json deploy alpha --log-dir "$LOGS" >"$R.x" 2>"$R.x.err" ||
	fail "deploy without experimental features exited $?: $(tail -5 "$R.x.err")"
jq_py "$R.x" 'hosts["alpha"]["status"] == "deployed"' || fail "$(cat "$R.x")"
NIX_CONFIG=$bare C build alpha >/dev/null 2>"$R.x.err" || fail "build: $(tail -5 "$R.x.err")"
# ... while Nix itself refuses without them (so the test above could fail)
NIX_CONFIG=$bare nix eval --expr 1 >/dev/null 2>&1 && fail "nix has the features anyway"

note "-v shows every local and remote command, with its duration and outcome"
fleet_commit --only alpha
C -v deploy alpha --log-dir "$LOGS" >/dev/null 2>"$R.v" || fail "deploy -v: $(tail -5 "$R.v")"
grep -Eq '^\[\+[0-9.]+s\] local\$ nix --extra-experimental-features nix-command flakes eval .*\([0-9.]+s, exit 0\)$' "$R.v" ||
	fail "no local nix eval in the trace: $(head -5 "$R.v")"
grep -Eq '^\[\+[0-9.]+s\] alpha[^$]*\$ .*\([0-9.]+s, exit 0\)$' "$R.v" ||
	fail "no remote command of alpha in the trace: $(head -5 "$R.v")"
C deploy alpha --log-dir "$LOGS" >/dev/null 2>"$R.v"
! grep -q 'local\$' "$R.v" || fail "commands traced without -v"

note "a broken unrelated host does not block a one-host deploy"
fleet_commit
echo 'builtins.abort "broken"' >"$FLEET_DIR/repo/broken.nix"
sed -i 's|^  outputs = { self }: import ./fleet.nix;|  outputs = { self }: let f = import ./fleet.nix; in f // { nixosConfigurations = f.nixosConfigurations // { beta = import ./broken.nix; }; };|' "$FLEET_DIR/repo/flake.nix"
git -C "$FLEET_DIR/repo" add -A >/dev/null && git -C "$FLEET_DIR/repo" commit -qm broken-beta
cj "$R.8" alpha
[ "$rc" = 0 ] || fail "deploy alpha with beta broken exited $rc"
cj "$R.9" beta
[ "$rc" = 1 ] || fail "deploy of broken beta exited $rc"
jq_py "$R.9" 'hosts["beta"]["status"] == "failed" and hosts["beta"]["error"].startswith("evaluation failed: ")' ||
	fail "$(cat "$R.9")"

note "build failures in one group: each host's error is its own builder's, with one prefix"
git -C "$FLEET_DIR/repo" checkout -q HEAD~1 -- flake.nix && git -C "$FLEET_DIR/repo" commit -qam unbreak
fleet_commit alpha=buildfail beta=buildfail
cj "$R.10" alpha beta
[ "$rc" = 1 ] || fail "deploy of two failing builds exited $rc"
for h in alpha beta; do
	o=$(if [ $h = alpha ]; then echo beta; else echo alpha; fi)
	e=$(jq_py "$R.10" "hosts['$h']['error']")
	case $e in "build failed: builder for '"*"$h-gen"*".drv' failed"*"the builder of $h fails here"*) ;;
	*) fail "$h's error is not its builder's: $e" ;; esac
	case $e in *"$o"*) fail "$h's error names $o: $e" ;; esac
	case $e in *"build failed: build failed"*) fail "doubled prefix: $e" ;; esac
done

note "build: each host gets its own system (three aarch64 hosts in one group)"
B=$FLEET_DIR/ex
mkdir -p "$B"
"$MKREPO" "$B" "$TOP/examples/constellation.yaml" >/dev/null || fail "mkrepo examples"
"$CONSTEL" -i "$B/repo/constellation.yaml" --json build >"$R.b" 2>"$R.b.err" ||
	fail "build exited $?: $(cat "$R.b.err")"
for h in galactica pegasus raptor viper cylon; do
	[ "$(jq_py "$R.b" "hosts['$h']['path']")" = "$("$MKREPO" path "$B" $h)" ] ||
		fail "$h built the wrong system: $(cat "$R.b")"
done
echo "all good"
