#!/bin/sh
# The host protocol keeps its promise (issue #11): whatever happens, every
# host ends on a whole system and the report says which. One host of the
# fleet per case, numbered as in the issue:
#   1  two deploys of one host started together: exactly one activates
#   2  a watchdog killed with SIGKILL: the lock is freed, the next deploy
#      reports the interrupted run and repairs it
#   3  restore goes to what ran, not to the profile's previous generation
#   4  a "reboot" (wiped /run/constel) while the watchdog waits for the
#      confirmation: reported as it is, repaired by the next deploy
#   5  /run full: nothing is activated, nothing changes
#   6  --no-magic-rollback on a host that cuts its network: bounded, truthful
#   7  a host answering the query without end: "answer too long"; one
#      writing slowly forever: the deadline, and SIGTERM, end constel
#   8  a host forging its start answer is not believed, and its text
#      reaches neither the terminal nor the JSON raw
#   12 a failed build on the host: reported as such, nothing activated
#   13 records say what happened: rolled-back, rollback, nothing for
#      dry-activate; the activation's own output is in the host's run log
# The lying hosts (7, 8) answer through an sshd ForceCommand.
# CASES="1 5" runs only those (while working on one).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns

INV=$(mktemp /tmp/constel-protocol.XXXXXX) || fail "mktemp"
cat >"$INV" <<'EOF'
hosts:
  lock: {}
  kill: {}
  boot: {}
  wipe: {}
  full: {}
  cut: {}
  liar: {}
  forger: {}
  bld: {}
  prov:
    services: { db: 5432 }
  cons:
    uses: [db]
EOF
fleet_up "$INV"
fleet_repo
rm -f "$INV"
D=$FLEET_DIR
LOGS=$D/logs
R=$D/r
CASES=${CASES:-1 2 3 4 5 6 7 8 12 13}
ESC=$(printf '\033')

# later MSG: a failure that does not stop the other cases; the test fails at its end
later() {
	echo "FAIL (later): $*" >&2
	echo "$*" >>"$D/later"
}

want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

# bg NAME SECONDS ARGS...: constel (-i $BG_INV) in the background, killed
# when the test ends; $R.NAME gets its JSON, .err, .rc and .secs
BG_INV=$D/repo/constellation.yaml
bg() {
	_n=$1 _t=$2
	shift 2
	(
		_t0=$(date +%s)
		timeout -k 5 "$_t" "$CONSTEL" -i "$BG_INV" --ssh-config "$D/ssh_config" "$@" \
			>"$R.$_n" 2>"$R.$_n.err" &
		echo $! >"$D/$_n.bgpid"
		wait $!
		echo $? >"$R.$_n.rc"
		echo $(($(date +%s) - _t0)) >"$R.$_n.secs"
		rm -f "$D/$_n.bgpid"
	) &
}
_bg_cleanup() {
	for _f in "$D"/*.bgpid; do
		[ -e "$_f" ] && kill "$(cat "$_f")" 2>/dev/null
	done
	wait
}
trap '_bg_cleanup; _fleet_cleanup' EXIT
trap '_bg_cleanup; _fleet_cleanup; trap - EXIT; exit 130' INT
trap '_bg_cleanup; _fleet_cleanup; trap - EXIT; exit 143' TERM
trap '_bg_cleanup; _fleet_cleanup; trap - EXIT; exit 129' HUP

# Ct SECONDS ARGS...: constel on the fleet, killed after SECONDS (it must never hang)
Ct() {
	_t=$1
	shift
	timeout -k 5 "$_t" "$CONSTEL" -i "$D/repo/constellation.yaml" --ssh-config "$D/ssh_config" "$@"
}
# cj FILE ARGS...: deploy_lib's, bounded (exit 124: constel hung)
cj() {
	_out=$1
	shift
	Ct 120 --json deploy --log-dir "$LOGS" "$@" >"$_out" 2>"$_out.err"
	rc=$?
	cat "$_out.err" >&2
}

profile_path() { fleet_exec "$1" readlink -f /nix/var/nix/profiles/system; }
profile_gen() {
	_l=$(readlink "$(fleet_host_dir "$1")/nix/var/nix/profiles/system")
	_l=${_l#system-}
	echo "${_l%-link}"
}
gen_path() { fleet_exec "$1" readlink -f "/nix/var/nix/profiles/system-$2-link"; }
# the systems of every generation of HOST's profile, one a line
gen_paths() {
	fleet_exec "$1" sh -c 'for l in /nix/var/nix/profiles/system-*-link; do readlink -f "$l"; done'
}
# whole HOST [PATH]: the profile's generation is the running system (and is PATH)
whole() {
	_p=$(profile_path "$1")
	_c=$(current "$1")
	[ -n "$_c" ] && [ "$_p" = "$_c" ] || fail "$1 is between generations: profile $_p, running $_c"
	[ -z "${2:-}" ] || [ "$_c" = "$2" ] || fail "$1 runs $_c, expected $2"
}
# activations HOST: how many activations HOST's switch-to-configuration began
activations() { grep -c " start\$" "$(fleet_host_dir "$1")/varlib/fleet/activation.log"; }
state_of() { fleet_exec "$1" cat /run/constel/state 2>/dev/null; }
holder_pid() { fleet_exec "$1" sed -n 's/^pid=//p' /run/constel/holder; }
has_no_esc() {
	! grep -q "$ESC" "$1" || fail "raw ESC in $1: $(od -c "$1" | grep -m 3 '033')"
}
# json_ok FILE: strict JSON (UTF-8, no raw control characters), every host
# with every key of the report
json_ok() {
	/usr/bin/python3 -c '
import json, sys
d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
keys = {"name", "status", "phase", "path", "previous", "generation", "seconds", "error"}
for h in d["hosts"]:
    missing = keys - set(h)
    assert not missing, "%s lacks %s" % (h.get("name"), sorted(missing))
' "$1" || fail "not a whole JSON report: $(cat "$1")"
}
record() { cat "$(fleet_host_dir "$1")/varlib/constel/deployment.json" 2>/dev/null; }
history_lines() { wc -l <"$(fleet_host_dir "$1")/varlib/constel/history.jsonl"; }
# log_events HOST: the git notes of HOST, as "RESULT GEN PATH" lines
log_events() {
	C log --json >"$D/log.json" 2>/dev/null || fail "constel log failed"
	/usr/bin/python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])):
    if e["host"] == sys.argv[2]:
        print(e["result"], e["generation"], e["path"])
' "$D/log.json" "$1"
}

note "every host on generation 1"
cj "$R.0"
[ "$rc" = 0 ] || fail "first deploy exited $rc"

# ---- 6 runs in the background (it waits for a host that cut its network),
# from a clone of the repository: its git notes do not race the others'
if want 6; then
	note "6: --no-magic-rollback on a host that cuts its network (in the background)"
	fleet_commit --only cut cut=cutnet
	P6=$(fleet_path cut)
	git clone -q "$D/repo" "$D/repo6" || fail "clone"
	BG_INV=$D/repo6/constellation.yaml
	bg 6 150 --json deploy cut --no-magic-rollback --activation-timeout 2 --log-dir "$LOGS"
	BG_INV=$D/repo/constellation.yaml
fi

# ---- 1
if want 1; then
	note "1: two deploys of one host started together, 20 times: exactly one activates"
	fleet_commit --only lock
	A=$(git -C "$D/repo" rev-parse HEAD)
	PA=$(fleet_path lock)
	fleet_commit --only lock
	B=$(git -C "$D/repo" rev-parse HEAD)
	PB=$(fleet_path lock)
	refused=0
	i=1
	while [ $i -le 20 ]; do
		if [ $((i % 2)) = 1 ]; then rev=$B p=$PB; else rev=$A p=$PA; fi
		n0=$(activations lock)
		Ct 60 --json deploy lock --rev "$rev" --log-dir "$LOGS" >"$R.1.$i.a" 2>"$R.1.$i.a.err" &
		pa=$!
		Ct 60 --json deploy lock --rev "$rev" --log-dir "$LOGS" >"$R.1.$i.b" 2>"$R.1.$i.b.err" &
		pb=$!
		wait $pa
		ra=$?
		wait $pb
		rb=$?
		[ $ra != 124 ] && [ $rb != 124 ] && [ $ra -lt 128 ] && [ $rb -lt 128 ] ||
			fail "try $i: a constel hung (exit $ra, $rb)"
		n=$(($(activations lock) - n0))
		[ $n = 1 ] || fail "try $i: $n activations: $(cat "$R.1.$i.a.err" "$R.1.$i.b.err")"
		st=$(for f in "$R.1.$i.a" "$R.1.$i.b"; do jq_py "$f" 'hosts["lock"]["status"]'; done |
			sort | tr '\n' ' ')
		case $st in
		"deployed failed ")
			cat "$R.1.$i.a" "$R.1.$i.b" | grep -q "another deploy holds the host's lock" ||
				fail "try $i: the loser failed otherwise: $(cat "$R.1.$i.a" "$R.1.$i.b")"
			refused=$((refused + 1))
			;;
		"deployed unchanged ") ;; # the second came after the first was done
		*) fail "try $i: statuses $st: $(cat "$R.1.$i.a" "$R.1.$i.b")" ;;
		esac
		whole lock "$p"
		i=$((i + 1))
	done
	echo "refused by the lock in $refused of 20 tries (the others did not overlap)"
	[ $refused -ge 1 ] || fail "the two deploys never overlapped: the lock was not tested"
fi

# ---- 2
if want 2; then
	note "2: the watchdog is killed (SIGKILL) during the activation"
	fleet_commit --only kill kill=hang
	P2=$(fleet_path kill)
	Ct 120 --json deploy kill --activation-timeout 60 --log-dir "$LOGS" >"$R.2" 2>"$R.2.err" &
	pid=$!
	wait_until 30 sh -c "grep -q 'kill 2 switch start' '$(fleet_host_dir kill)/varlib/fleet/activation.log'" ||
		fail "kill's activation never started"
	wpid=$(holder_pid kill)
	[ -n "$wpid" ] || fail "no holder pid on kill"
	kill -9 "$wpid"
	t0=$(date +%s)
	wait $pid
	rc=$?
	cat "$R.2.err" >&2
	[ "$rc" = 1 ] || fail "exit $rc after the watchdog was killed"
	[ $(($(date +%s) - t0)) -le 10 ] || fail "constel took $(($(date +%s) - t0))s to see the watchdog died"
	jq_py "$R.2" '"interrupted" in hosts["kill"]["error"] and "generation 2" in hosts["kill"]["error"]' ||
		fail "kill: $(cat "$R.2")"
	# nobody watches the activation any more: it must not go on beside the repair
	no_orphan() { [ -z "$(fleet_pgrep kill 'sleep 3600')" ]; }
	wait_until 5 no_orphan || fail "the activation of the killed watchdog goes on"
	# status tells it too, before any deploy repairs it
	C --json status kill --no-eval >"$R.2s" 2>"$R.2s.err"
	jq_py "$R.2s" 'hosts["kill"]["interrupted"] is not None and not hosts["kill"]["locked"]' ||
		fail "status: $(cat "$R.2s")"
	grep -q 'was interrupted half-way' "$R.2s.err" || fail "status did not say it: $(cat "$R.2s.err")"
	fleet_commit --only kill
	P2b=$(fleet_path kill)
	cj "$R.2b" kill
	[ "$rc" = 0 ] || fail "the deploy after the killed watchdog exited $rc"
	! grep -q "another deploy holds" "$R.2b.err" || fail "the dead watchdog's lock was not freed"
	grep -q "was interrupted on this host" "$R.2b.err" || fail "the interrupted run was not reported"
	whole kill "$P2b"
	! gen_paths kill | grep -qx "$P2" || fail "the interrupted generation ($P2) is still there: $(gen_paths kill)"
fi

# ---- 3
if want 3; then
	note "3: g1 runs, g2 staged with --goal boot, g3 fails: g1 runs again, the profile on g2"
	P3a=$(current boot)
	fleet_commit --only boot
	P3b=$(fleet_path boot)
	cj "$R.3a" boot --goal boot
	[ "$rc" = 0 ] || fail "boot goal exited $rc"
	[ "$(current boot)" = "$P3a" ] && [ "$(profile_path boot)" = "$P3b" ] ||
		fail "boot: not staged: runs $(current boot), profile $(profile_path boot)"
	fleet_commit --only boot boot=fail
	cj "$R.3b" boot
	[ "$rc" = 1 ] || fail "failing g3 exited $rc"
	jq_py "$R.3b" 'hosts["boot"]["status"] == "rolled-back"' || fail "boot: $(cat "$R.3b")"
	jq_py "$R.3b" '"'"$P3a"' runs again" in hosts["boot"]["error"]' ||
		fail "boot: the report does not say what runs: $(cat "$R.3b")"
	[ "$(current boot)" = "$P3a" ] || fail "boot runs $(current boot), not g1 $P3a"
	[ "$(profile_gen boot)" = 2 ] && [ "$(profile_path boot)" = "$P3b" ] ||
		fail "boot's profile is at $(profile_gen boot) ($(profile_path boot)), not g2"
	[ "$(gens boot)" = "1 2 " ] || fail "boot generations: $(gens boot)"
fi

# ---- 4
if want 4; then
	note "4: /run/constel wiped (a reboot) while the watchdog waits for the confirmation"
	P4was=$(current wipe)
	fleet_commit --only wipe wipe=cutnet
	P4=$(fleet_path wipe)
	Ct 150 --json deploy wipe --confirm-timeout 60 --activation-timeout 5 --log-dir "$LOGS" \
		>"$R.4" 2>"$R.4.err" &
	pid=$!
	wait_until 30 sh -c "'$FLEET' exec '$D' wipe grep -qx phase=awaiting-confirm /run/constel/state" ||
		fail "wipe never waited for its confirmation: $(state_of wipe)"
	wpid=$(holder_pid wipe)
	[ -n "$wpid" ] || fail "no holder pid on wipe"
	# the watchdog is a session leader: its group is everything of the run
	kill -9 "-$wpid" 2>/dev/null
	kill -9 "$wpid" 2>/dev/null
	for p in $(fleet_pgrep wipe switch-to-configuration); do kill -9 "$p" 2>/dev/null; done
	# what a reboot leaves: an empty /run, the network up, /var/lib
	fleet_exec wipe sh -c 'rm -rf /run/constel && ip link set eth0 up' || fail "wiping wipe's /run/constel"
	[ -e "$(fleet_host_dir wipe)/varlib/constel/pending" ] || fail "no pending record on wipe"
	t0=$(date +%s)
	wait $pid
	rc=$?
	cat "$R.4.err" >&2
	[ "$rc" = 1 ] || fail "exit $rc after the wipe"
	[ $(($(date +%s) - t0)) -le 60 ] || fail "constel took $(($(date +%s) - t0))s after the wipe"
	jq_py "$R.4" 'hosts["wipe"]["status"] == "failed"' || fail "wipe: $(cat "$R.4")"
	jq_py "$R.4" '"interrupted" in hosts["wipe"]["error"] and "generation 2" in hosts["wipe"]["error"]' ||
		fail "wipe: the report does not say what is on the host: $(cat "$R.4")"
	! grep -q "not changed\|another run" "$R.4" || fail "wipe: a false report: $(cat "$R.4")"
	# rollback --repair puts back only what the interrupted run found, and says so
	C --json rollback --repair wipe --log-dir "$LOGS" >"$R.4r" 2>"$R.4r.err"
	[ $? = 0 ] || fail "rollback --repair exited non-zero: $(tail -5 "$R.4r.err")"
	jq_py "$R.4r" 'hosts["wipe"]["status"] == "deployed"' || fail "repair: $(cat "$R.4r")"
	[ ! -e "$(fleet_host_dir wipe)/varlib/constel/pending" ] || fail "the pending record survived the repair"
	fleet_exec wipe cat /var/lib/constel/deployment.json | grep -q '"result":"repaired"' ||
		fail "the repair is not recorded as one"
	! gen_paths wipe | grep -qx "$P4" || fail "the repair left the interrupted generation: $(gen_paths wipe)"
	C rollback --repair wipe --log-dir "$LOGS" 2>"$R.4r.err" || fail "a second repair failed"
	grep -q "nothing to repair" "$R.4r.err" || fail "a second repair did something: $(cat "$R.4r.err")"
	whole wipe "$P4was"
	# (case 2 shows the next deploy repairing by itself); and deploys work again
	fleet_commit --only wipe
	P4b=$(fleet_path wipe)
	cj "$R.4b" wipe
	[ "$rc" = 0 ] || fail "the deploy after the repair exited $rc"
	whole wipe "$P4b"
fi

# ---- 5
if want 5; then
	note "5: /run full: the deploy changes nothing; once there is room it works"
	fleet_commit --only full
	P5=$(fleet_path full)
	before=$(current full)
	gens5=$(gens full)
	n0=$(activations full)
	fleet_exec full sh -c 'head -c 100M /dev/zero >/run/fill' 2>/dev/null
	fleet_exec full sh -c 'echo x >/run/probe' 2>/dev/null && fail "/run of full is not full"
	cj "$R.5" full
	[ "$rc" = 1 ] || fail "deploy with /run full exited $rc"
	jq_py "$R.5" '"nothing was changed" in hosts["full"]["error"]' || fail "full: $(cat "$R.5")"
	[ "$(current full)" = "$before" ] && [ "$(gens full)" = "$gens5" ] &&
		[ "$(activations full)" = "$n0" ] || fail "full was changed"
	whole full "$before"
	fleet_exec full rm -f /run/fill
	cj "$R.5b" full
	[ "$rc" = 0 ] || fail "deploy after /run was freed exited $rc"
	whole full "$P5"
fi

# ---- 7, 8: lying hosts, through a ForceCommand
cat >"$D/liar.sh" <<EOF
#!/bin/sh
# ForceCommand of the lying hosts: \$D/liar.HOST.mode says how this host lies
mode=\$(cat "$D/liar.\$(hostname).mode" 2>/dev/null)
cmd=\$SSH_ORIGINAL_COMMAND
echo "\$(hostname) \$mode: \$(printf '%s' "\$cmd" | tail -n 1 | cut -c1-60)" >>"$D/liar.log"
case \$mode:\$cmd in
query-endless:*constel-query*) exec yes 'gen=1 and more' ;;
query-slow:*constel-query*)
	while :; do echo "gen=1"; sleep 1; done ;;
start-*:*constel-start*)
	cat >/dev/null
	run=\$(printf '%s\n' "\$cmd" | sed -n "s/.* constel-start '\([^']*\)'.*/\1/p")
	sent=\$(printf '%s\n' "\$cmd" | sed -n "s/.* constel-start '[^']*' 'path' '\([^']*\)'.*/\1/p")
	echo "milestone=finished"
	echo "run=\$run"
	echo "phase=done"
	if [ "\$mode" = start-forge ]; then
		echo "result=ok"
		echo "gen=999"
		echo "prev=999"
		echo "path=/nix/store/00000000000000000000000000000000-forged"
	else
		echo "result=failed"
		echo "gen=1"
		echo "prev=1"
		echo "path=\$sent"
	fi
	printf 'running=/nix/store/x-\033]0;title\007\n'
	printf 'reason=\033[2J\033]0;title\007\377\376 forged reason\n'
	echo "--- output ---"
	printf 'output \033[2J\033]0;title\007\377\376 forged output\n'
	exit 0 ;;
esac
exec sh -c "\$cmd"
EOF
chmod +x "$D/liar.sh"
# lie HOST: HOST's sshd runs every command through liar.sh from now on
lie() {
	echo "ForceCommand $D/liar.sh" >>"$(fleet_host_dir "$1")/sshd_config"
	kill -HUP "$("$FLEET" pid "$D" "$1")" || fail "HUP to $1's sshd"
	: >"$D/liar.$1.mode"
	wait_until 10 sh -c "ssh -F '$D/ssh_config' $1 true && grep -q '^$1 ' '$D/liar.log'" ||
		fail "$1 does not run its commands through liar.sh"
}

if want 7; then
	note "7: a host answering the query without end fails quickly: answer too long"
	lie liar
	echo query-endless >"$D/liar.liar.mode"
	t0=$(date +%s)
	cj "$R.7a" liar
	[ "$rc" = 1 ] || fail "exit $rc with an endless answer"
	jq_py "$R.7a" '"answer too long" in hosts["liar"]["error"]' || fail "liar: $(cat "$R.7a")"
	[ $(($(date +%s) - t0)) -le 15 ] || fail "an endless answer took $(($(date +%s) - t0))s"

	note "7: SIGTERM stops constel while the host's query writes slowly forever"
	echo query-slow >"$D/liar.liar.mode"
	t0=$(date +%s)
	timeout -s TERM 5 "$CONSTEL" -i "$D/repo/constellation.yaml" --ssh-config "$D/ssh_config" \
		--json deploy liar --log-dir "$LOGS" >"$R.7b" 2>"$R.7b.err"
	rc=$?
	t=$(($(date +%s) - t0))
	cat "$R.7b.err" >&2
	[ $t -le 9 ] || fail "constel took ${t}s, 5 of them before SIGTERM"
	[ "$rc" = 124 ] || fail "exit $rc: constel did not run until SIGTERM"
	json_ok "$R.7b"
	jq_py "$R.7b" 'hosts["liar"]["status"] in ("failed", "skipped")' || fail "liar: $(cat "$R.7b")"

	note "7: without SIGTERM, the query's deadline ends it (in the background)"
	bg 7c 120 --json deploy liar --log-dir "$LOGS"
fi

if want 8; then
	note "8: a host forging its start answer (path, gen=999, escapes, invalid UTF-8)"
	lie forger
	fleet_commit --only forger
	P8=$(fleet_path forger)
	before=$(current forger)
	echo start-forge >"$D/liar.forger.mode"
	cj "$R.8a" forger
	[ "$rc" = 1 ] || fail "exit $rc with a forged answer"
	jq_py "$R.8a" '"another system than the one constel sent" in hosts["forger"]["error"]' ||
		fail "forger: $(cat "$R.8a")"
	json_ok "$R.8a"
	jq_py "$R.8a" 'hosts["forger"]["path"] == "'"$P8"'" and hosts["forger"]["generation"] != 999' ||
		fail "forger: the report took the host's word: $(cat "$R.8a")"
	has_no_esc "$R.8a.err"
	! grep -q "$(printf '\377')" "$R.8a.err" || fail "invalid UTF-8 from the host on the terminal"
	log_events forger >"$D/forger.events"
	! grep -q "999\|forged" "$D/forger.events" || fail "the git notes took the host's word: $(cat "$D/forger.events")"

	note "8: the same host failing with a reason made of escapes and invalid UTF-8"
	echo start-fail >"$D/liar.forger.mode"
	cj "$R.8b" forger
	[ "$rc" = 1 ] || fail "exit $rc with a forged failure"
	json_ok "$R.8b"
	jq_py "$R.8b" '"forged reason" in hosts["forger"]["error"]' || fail "forger: $(cat "$R.8b")"
	has_no_esc "$R.8b.err"
	has_no_esc "$R.8b"
	has_no_esc "$LOGS/forger.log"
	[ "$(current forger)" = "$before" ] || fail "forger was changed"
fi

# ---- 12
if want 12; then
	note "12: built on the host, the build fails: reported as such, nothing activated"
	before=$(current bld)
	gens12=$(gens bld)
	n0=$(activations bld)
	fleet_commit --only bld bld=buildfail
	cj "$R.12" bld --build-on target
	[ "$rc" = 1 ] || fail "exit $rc after a failed build on the host"
	jq_py "$R.12" '"build on the host failed" in hosts["bld"]["error"]' || fail "bld: $(cat "$R.12")"
	jq_py "$R.12" '"buildfail knob: the builder of bld fails here" in hosts["bld"]["error"]' ||
		fail "bld: not the builder's own line: $(cat "$R.12")"
	[ "$(current bld)" = "$before" ] && [ "$(gens bld)" = "$gens12" ] && [ "$(activations bld)" = "$n0" ] ||
		fail "bld was changed"
fi

# ---- 13
if want 13; then
	note "13: --rollback-fleet: cons fails, prov (changed) is rolled back; the records say so"
	P13p=$(current prov)
	fleet_commit cons=fail --only prov
	cj "$R.13a" --rollback-fleet prov cons
	[ "$rc" = 1 ] || fail "exit $rc"
	for h in prov cons; do
		jq_py "$R.13a" "hosts['$h']['status'] == 'rolled-back'" || fail "$h: $(cat "$R.13a")"
		record $h | grep -q '"result":"rolled-back"' || fail "$h's record: $(record $h)"
	done
	whole prov "$P13p"
	grep -q "simulated activation failure" "$LOGS/cons.log" ||
		fail "the activation's own output is not in cons's run log"
	log_events prov | grep -q "^rolled-back " ||
		fail "prov's git note does not say rolled-back: $(log_events prov)"

	note "13: constel rollback writes a record that says rollback"
	fleet_commit --only prov
	cj "$R.13b" prov
	[ "$rc" = 0 ] || fail "deploy prov exited $rc"
	C rollback prov --log-dir "$LOGS" 2>"$R.13b.err" || fail "rollback of prov: $(cat "$R.13b.err")"
	whole prov "$P13p"
	record prov | grep -q '"result":"rollback"' || fail "prov's record: $(record prov)"
	record prov | grep -q "\"path\":\"$P13p\"" || fail "prov's record names another system: $(record prov)"
	log_events prov | grep -q "^rollback " ||
		later "13: constel rollback left no git note that says rollback: $(log_events prov)"

	note "13: --goal dry-activate records nothing and changes no generation"
	fleet_commit --only cons
	rec=$(record cons)
	hl=$(history_lines cons)
	gens13=$(gens cons)
	before=$(current cons)
	nev=$(log_events cons | wc -l)
	cj "$R.13c" cons --goal dry-activate
	[ "$rc" = 0 ] || fail "dry-activate exited $rc"
	[ "$(gens cons)" = "$gens13" ] && [ "$(current cons)" = "$before" ] || fail "dry-activate changed cons"
	[ "$(record cons)" = "$rec" ] && [ "$(history_lines cons)" = "$hl" ] ||
		fail "dry-activate wrote a record: $(record cons)"
	grep -q "would activate" "$LOGS/cons.log" || fail "dry-activate's output is not in the run log"
	[ "$(log_events cons | wc -l)" = "$nev" ] ||
		later "13: dry-activate left a git note: $(log_events cons | head -n 1)"
fi

# ---- the background cases
if want 7; then
	wait_until 120 test -e "$R.7c.secs" || fail "7: the background constel never ended"
	cat "$R.7c.err" >&2
	[ "$(cat "$R.7c.rc")" = 1 ] || fail "7: exit $(cat "$R.7c.rc") with a query that never ends"
	jq_py "$R.7c" '"did not finish within" in hosts["liar"]["error"]' || fail "7: liar: $(cat "$R.7c")"
	[ "$(cat "$R.7c.secs")" -le 50 ] || fail "7: the query's deadline came after $(cat "$R.7c.secs")s"
fi
if want 6; then
	wait_until 150 test -e "$R.6.secs" || fail "6: the background constel never ended"
	cat "$R.6.err" >&2
	echo "6: constel ended after $(cat "$R.6.secs")s"
	[ "$(cat "$R.6.rc")" = 1 ] || fail "6: exit $(cat "$R.6.rc")"
	[ "$(cat "$R.6.secs")" -le 60 ] || fail "6: constel took $(cat "$R.6.secs")s"
	jq_py "$R.6" '"no confirmation was asked" in hosts["cut"]["error"] and "unknown" in hosts["cut"]["error"]' ||
		fail "6: cut: $(cat "$R.6")"
	! grep -q "restores the previous generation itself" "$R.6" "$R.6.err" || fail "6: a false promise"
	[ "$(current cut)" = "$P6" ] || fail "6: cut does not run what it switched to"
fi
[ ! -s "$D/later" ] || fail "$(cat "$D/later")"
echo "all good"
