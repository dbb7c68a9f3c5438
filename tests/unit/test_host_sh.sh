#!/bin/sh
# Unit tests of the host scripts (deploy/sh/*.sh) under dash and busybox sh:
# each case runs start.sh (with watchdog.sh on stdin), wait.sh and query.sh
# against a stub host in a temporary directory: a system profile managed by
# a stub nix-env, stub systems whose switch-to-configuration logs, fails or
# hangs on demand, and private /run/constel and /var/lib/constel.
# Usage: tests/unit/test_host_sh.sh [SHELL...]   (default: dash, busybox sh)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SH_DIR=$TOP/deploy/sh
shells=${*:-dash busybox}
pass=0
failed=0

# ---- the stub host ----

setup() {
	T=$(mktemp -d /tmp/constel-test-host-sh.XXXXXX)
	mkdir -p "$T/bin" "$T/run" "$T/lib" "$T/profiles" "$T/store"
	# every `sh` the scripts start is the shell under test
	case $SHELL_UNDER_TEST in
	busybox) printf '#!/bin/sh\nexec /bin/busybox sh "$@"\n' >"$T/bin/sh" ;;
	*) printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v "$SHELL_UNDER_TEST")" >"$T/bin/sh" ;;
	esac
	# nix-env -p PROFILE --set PATH | --switch-generation N | --delete-generations N
	cat >"$T/bin/nix-env" <<'EOF'
#!/bin/sh
[ "$1" = -p ] || exit 2
p=$2
shift 2
cur() { l=$(readlink "$p" 2>/dev/null) || l=; l=${l##*/}; l=${l#system-}; echo "${l%-link}"; }
case $1 in
--set)
	n=0
	for l in "$p"-*-link; do
		[ -e "$l" ] || [ -L "$l" ] || continue
		g=${l##*/system-}; g=${g%-link}; [ "$g" -gt $n ] && n=$g
	done
	n=$((n + 1))
	ln -s "$2" "$p-$n-link" && ln -sfn "system-$n-link" "$p" ;;
--switch-generation)
	[ -e "$p-$2-link" ] || { echo "no generation $2" >&2; exit 1; }
	ln -sfn "system-$2-link" "$p" ;;
--delete-generations)
	[ "$(cur)" != "$2" ] || { echo "cannot delete the current generation" >&2; exit 1; }
	rm -f "$p-$2-link" ;;
*) exit 2 ;;
esac
EOF
	chmod +x "$T/bin/sh" "$T/bin/nix-env"
	export PATH="$T/bin:$PATH" CONSTEL_RUN_DIR="$T/run" CONSTEL_LIB_DIR="$T/lib" \
		CONSTEL_PROFILE="$T/profiles/system" CONSTEL_CURRENT="$T/current" \
		CONSTEL_STORE="$T/store"
}

teardown() {
	# a watchdog a case left behind (hang) ends with it
	for f in "$T"/store/*/pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	rm -rf "$T"
}

# system NAME [fail|hang|slow]: a stub system in the store (slow: takes 2 s)
system() {
	d=$T/store/$1
	mkdir -p "$d/bin"
	cat >"$d/bin/switch-to-configuration" <<EOF
#!/bin/sh
echo "$1 \$1" >>"$T/activations"
case "${2:-}" in
fail) echo "$1: simulated failure" >&2; exit 1 ;;
hang) echo \$\$ >"$d/pid"; exec sleep 30 ;;
slow) sleep 2 ;;
esac
case \$1 in switch|test) ln -sfn "$d" "$T/current" ;; esac
exit 0
EOF
	chmod +x "$d/bin/switch-to-configuration"
	echo "$d"
}

# run_start RUNID MODE VALUE GOAL CONFIRM LIMIT AUTO DELETE [RUNNING]: $answer, $rc
run_start() {
	answer=$(cd "$T" && sh "$SH_DIR/start.sh" "$@" <"$SH_DIR/watchdog.sh" 2>"$T/start.err")
	rc=$?
}

# deploy RUNID SYSTEM [GOAL [CONFIRM]]: a whole activation, confirmed when CONFIRM > 0
deploy() {
	run_start "$1" path "$2" "${3:-switch}" "${4:-0}" 10 1 1 ""
	if [ "${4:-0}" -gt 0 ] && [ "$rc" = 0 ]; then
		answer=$(sh "$SH_DIR/wait.sh" "$1" 10 confirm)
		rc=$?
	fi
}

get() { printf '%s\n' "$answer" | sed -n "/^--- output ---\$/q; s/^$1=//p" | tail -n 1; }
gen() { l=$(readlink "$T/profiles/system"); l=${l#system-}; echo "${l%-link}"; }
gens() { for l in "$T"/profiles/system-*-link; do [ -L "$l" ] && { g=${l##*/system-}; printf '%s ' "${g%-link}"; }; done; }
running() { readlink "$T/current"; }

fail() {
	echo "  FAIL: $*"
	echo "  answer: $(printf '%s' "$answer" | tr '\n' ' ')"
	ok=0
}

expect() { # expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1 is '$2', expected '$3'"
}

# ---- the cases ----

case_switch_confirmed() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a" switch 0
	deploy r2 "$b" switch 5
	expect rc "$rc" 0
	expect result "$(get result)" ok
	expect run "$(get run)" r2
	expect path "$(get path)" "$b"
	expect running "$(running)" "$b"
	expect generation "$(gen)" 2
	[ ! -e "$T/lib/pending" ] || fail "pending record left"
	for f in "$T"/run/canary.*; do [ ! -e "$f" ] || fail "canary left: $f"; done
}

case_unconfirmed_is_restored() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	run_start r2 path "$b" switch 1 10 1 1 ""
	expect milestone "$(get milestone)" awaiting-confirm
	answer=$(sh "$SH_DIR/wait.sh" r2 10)
	expect result "$(get result)" rolled-back
	expect running "$(running)" "$a"
	expect generation "$(gen)" 1
	expect generations "$(gens)" "1 "
}

case_restore_to_what_ran_not_to_profile() {
	# g1 runs, g2 is staged for the next boot, g3 fails: g1 runs again, the
	# profile points at g2 again, g3 is gone
	a=$(system a)
	b=$(system b)
	c=$(system c fail)
	deploy r1 "$a"
	deploy r2 "$b" boot
	expect staged "$(gen)" 2
	deploy r3 "$c"
	expect result "$(get result)" rolled-back
	expect running "$(running)" "$a"
	expect "running in the state" "$(get running)" "$a"
	expect "profile in the state" "$(get profile)" "$b"
	expect generation "$(gen)" 2
	expect generations "$(gens)" "1 2 "
	grep -q "^b boot$" "$T/activations" || fail "the staged generation was not set for boot again"
}

case_failed_restore_keeps_generations() {
	a=$(system a)
	b=$(system b fail)
	deploy r1 "$a"
	# what ran cannot be activated again: restore fails
	rm "$a/bin/switch-to-configuration"
	printf '#!/bin/sh\nexit 1\n' >"$a/bin/switch-to-configuration"
	chmod +x "$a/bin/switch-to-configuration"
	deploy r2 "$b"
	expect result "$(get result)" restore-failed
	expect generations "$(gens)" "1 2 "
	[ -e "$T/lib/pending" ] || fail "no pending record after a failed restore"
}

case_test_goal_leaves_profile() {
	a=$(system a)
	b=$(system b fail)
	deploy r1 "$a"
	deploy r2 "$b" test
	expect result "$(get result)" rolled-back
	expect running "$(running)" "$a"
	expect generations "$(gens)" "1 "
}

case_dry_activate_changes_nothing() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	deploy r2 "$b" dry-activate
	expect result "$(get result)" ok
	expect running "$(running)" "$a"
	expect generations "$(gens)" "1 "
	[ ! -e "$T/lib/pending" ] || fail "pending record left"
}

case_timeout_restores() {
	a=$(system a)
	b=$(system b hang)
	deploy r1 "$a"
	run_start r2 path "$b" switch 0 1 1 1 ""
	expect result "$(get result)" rolled-back
	case $(get reason) in "activation timed out after 1s"*) ;; *) fail "reason: $(get reason)" ;; esac
	expect running "$(running)" "$a"
}

case_lock_taken() {
	a=$(system a)
	mkdir -p "$T/run"
	flock "$T/run/lock" sleep 3 &
	holder=$!
	sleep 0.3
	run_start r1 path "$a" switch 0 10 1 1 ""
	expect rc "$rc" 75
	expect locked "$(get locked)" 1
	answer=$(sh "$SH_DIR/query.sh")
	expect "query locked" "$(get locked)" 1
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	[ ! -e "$T/activations" ] || fail "activated while locked"
}

case_two_starts_one_passes() {
	a=$(system a)
	b=$(system b)
	deploy r0 "$a"
	( run_start r1 path "$b" switch 2 10 1 1 ""; echo "$rc" >"$T/rc1" ) &
	( run_start r2 path "$b" switch 2 10 1 1 ""; echo "$rc" >"$T/rc2" ) &
	wait
	got=$(cat "$T/rc1" "$T/rc2" | sort | tr '\n' ' ')
	expect "exit statuses" "$got" "0 75 "
	answer=$(sh "$SH_DIR/wait.sh" r1 10 confirm; sh "$SH_DIR/wait.sh" r2 10 confirm)
	expect generation "$(gen)" 2
	expect running "$(running)" "$b"
}

case_dead_watchdog_frees_lock_and_is_repaired() {
	a=$(system a)
	b=$(system b)
	c=$(system c)
	deploy r1 "$a"
	run_start r2 path "$b" switch 30 10 1 1 ""
	expect milestone "$(get milestone)" awaiting-confirm
	pid=$(sed -n 's/^pid=//p' "$T/run/holder")
	kill -9 "$pid"
	sleep 0.2
	answer=$(sh "$SH_DIR/query.sh")
	expect "query locked" "$(get locked)" ""
	expect interrupted "$(get interrupted)" r2
	expect "interrupted prev" "$(get interrupted_prev)" 1
	# the next run takes the lock, first restores what r2 left, then deploys
	deploy r3 "$c"
	expect rc "$rc" 0
	expect result "$(get result)" ok
	expect running "$(running)" "$c"
	# gen 2 (b, interrupted) was deleted by the repair: c is the new gen 2
	expect generations "$(gens)" "1 2 "
	grep -q 'repairing what the interrupted run r2 left' "$T/run/activation.log" ||
		fail "no repair in the log"
}

case_repair_mode() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	run_start r2 path "$b" switch 30 10 1 1 ""
	kill -9 "$(sed -n 's/^pid=//p' "$T/run/holder")"
	sleep 0.2
	run_start r3 repair 0 switch 0 10 1 1 ""
	expect result "$(get result)" repaired
	expect running "$(running)" "$a"
	expect generations "$(gens)" "1 "
	[ ! -e "$T/lib/pending" ] || fail "pending record left"
}

case_restore_mode() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	deploy r2 "$b"
	run_start r3 restore 1 switch 0 10 1 1 "$a"
	expect result "$(get result)" rolled-back
	expect running "$(running)" "$a"
	expect generations "$(gens)" "1 "
}

case_canary_unwritable_restores() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	mkdir "$T/run/canary.r2" # a directory: the canary cannot be written
	run_start r2 path "$b" switch 5 10 1 1 ""
	expect result "$(get result)" rolled-back
	case $(get reason) in *"canary"*) ;; *) fail "reason: $(get reason)" ;; esac
	expect running "$(running)" "$a"
}

case_pending_unwritable_changes_nothing() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	mkdir "$T/lib/pending.tmp"
	deploy r2 "$b"
	expect result "$(get result)" failed
	case $(get reason) in *"pending"*"nothing was changed"*) ;; *) fail "reason: $(get reason)" ;; esac
	expect generations "$(gens)" "1 "
	grep -q '^b ' "$T/activations" && fail "b was activated"
}

case_state_unwritable_refuses_start() {
	a=$(system a)
	mkdir -p "$T/run/state.tmp"
	run_start r1 path "$a" switch 0 10 1 1 ""
	expect rc "$rc" 70
	[ ! -e "$T/activations" ] || fail "activated"
}

case_wait_checks_the_run() {
	a=$(system a)
	deploy r1 "$a"
	answer=$(sh "$SH_DIR/wait.sh" other 1 confirm)
	expect rc "$?" 3
}

case_wait_tells_a_dead_watchdog() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	run_start r2 path "$b" switch 30 10 1 1 ""
	expect milestone "$(get milestone)" awaiting-confirm
	kill -9 "$(sed -n 's/^pid=//p' "$T/run/holder")"
	sleep 0.2
	t0=$(date +%s)
	answer=$(sh "$SH_DIR/wait.sh" r2 10 confirm)
	expect rc "$?" 4
	expect interrupted "$(get interrupted)" r2
	expect phase "$(get phase)" awaiting-confirm
	[ $(($(date +%s) - t0)) -le 2 ] || fail "wait.sh waited for a dead watchdog"
}

case_wait_after_a_wiped_run_dir() {
	a=$(system a)
	b=$(system b)
	deploy r1 "$a"
	run_start r2 path "$b" switch 30 10 1 1 ""
	kill -9 "$(sed -n 's/^pid=//p' "$T/run/holder")"
	rm -rf "$T/run" # a reboot: /run is new, the pending record on /var/lib stays
	answer=$(sh "$SH_DIR/wait.sh" r2 1 confirm)
	expect rc "$?" 4
	expect interrupted "$(get interrupted)" r2
	answer=$(sh "$SH_DIR/wait.sh" r3 1)
	expect "rc of another run" "$?" 3
	answer=$(sh "$SH_DIR/query.sh")
	expect interrupted "$(get interrupted)" r2
}

case_killed_watchdog_leaves_nothing_to_a_later_run() {
	# a watchdog killed mid-activation: what supervised its activation must
	# not end (or make look timed out) a later run's activation
	a=$(system a)
	b=$(system b hang)
	c=$(system c slow)
	deploy r1 "$a"
	( run_start r2 path "$b" switch 0 1 1 1 "" ) &
	i=0
	while [ ! -e "$b/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$(sed -n 's/^pid=//p' "$T/run/holder")"
	wait
	# the supervisor ends the activation, then frees the lock
	i=0
	while ! flock -n "$T/run/lock" true && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
	run_start r3 path "$c" switch 0 10 1 1 ""
	expect result "$(get result)" ok
	expect running "$(running)" "$c"
}

case_dead_watchdog_ends_its_activation() {
	a=$(system a)
	b=$(system b hang)
	deploy r1 "$a"
	( run_start r2 path "$b" switch 0 30 1 1 "" ) &
	i=0
	while [ ! -e "$b/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$(sed -n 's/^pid=//p' "$T/run/holder")"
	wait
	i=0
	while kill -0 "$(cat "$b/pid")" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
	! kill -0 "$(cat "$b/pid")" 2>/dev/null || fail "the activation goes on without its watchdog"
	i=0
	while ! flock -n "$T/run/lock" true && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
	flock -n "$T/run/lock" true || fail "the lock is still held"
}

case_log_is_rotated() {
	a=$(system a)
	mkdir -p "$T/run"
	head -c 300000 /dev/zero | tr '\0' x >"$T/run/activation.log"
	deploy r1 "$a"
	[ -e "$T/run/activation.log.1" ] || fail "not rotated"
	[ "$(wc -c <"$T/run/activation.log")" -lt 300000 ] || fail "log still large"
}

# ---- runner ----

cases=$(sed -n 's/^\(case_[a-z_]*\)() {$/\1/p' "$0")
for SHELL_UNDER_TEST in $shells; do
	if [ "$SHELL_UNDER_TEST" = busybox ] && ! /bin/busybox sh -c true 2>/dev/null; then
		echo "test_host_sh: no busybox (busybox-static:arm64 under qemu-user): fail"
		failed=$((failed + 1))
		continue
	fi
	for tc in $cases; do
		ok=1
		answer=
		setup
		$tc
		teardown
		if [ $ok = 1 ]; then
			pass=$((pass + 1))
		else
			echo "FAIL $SHELL_UNDER_TEST: $tc"
			failed=$((failed + 1))
		fi
	done
done
echo "test_host_sh: $pass passed, $failed failed ($shells)"
[ $failed = 0 ]
