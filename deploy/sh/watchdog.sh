# constel watchdog (POSIX sh: busybox, dash, bash). Activates one system on
# this host and makes sure the host ends on a whole system, whatever happens
# to the SSH connection that started it. Started by start.sh in a session of
# its own with SIGHUP ignored; it holds the host's deploy lock (fd 9, a flock
# the kernel frees when the watchdog dies) for its whole life, and fd 3 is
# the FIFO on which start.sh waits for its first milestone.
#
#   watchdog.sh RUNID MODE VALUE GOAL CONFIRM LIMIT AUTO DELETE RUNNING
#
# MODE path: VALUE is the system to activate; gen: the generation to switch
# back to; restore: put the host back as it was before an earlier run of
# constel (VALUE the generation the profile pointed at, RUNNING the system
# that ran), after a check of the host failed; repair: only restore what an
# interrupted run left behind.
# CONFIRM: seconds to wait for constel to remove the canary (0: none);
# LIMIT: seconds switch-to-configuration may take; AUTO 1: restore when the
# activation fails; DELETE 1: delete the new generation once restored.
#
# Files (see docs/architecture.md, "The host protocol"):
#   $run/state      key=value lines of this run: run, phase, result, gen,
#                   prev, path, running, profile, reason
#   $run/canary.RUNID  removed by constel over a new session (magic rollback)
#   $run/run.log    this run's output (switch-to-configuration's included)
#   $run/activation.log  every run's output, rotated past LOG_MAX bytes
#   $lib/pending    written before the profile is touched, removed once the
#                   host is on a whole system again: a run that died half-way
#                   (reboot, SIGKILL) is found there and repaired
set -u
trap '' HUP PIPE
runid=$1 mode=$2 value=$3 goal=$4 confirm=$5 limit=$6 auto=$7 delete=$8 was=${9:-}
run=${CONSTEL_RUN_DIR:-/run/constel}
lib=${CONSTEL_LIB_DIR:-/var/lib/constel}
profile=${CONSTEL_PROFILE:-/nix/var/nix/profiles/system}
current=${CONSTEL_CURRENT:-/run/current-system}
store=${CONSTEL_STORE:-/nix/store}
LOG_MAX=262144
cd "$run" || exit 70
printf 'pid=%s\nrun=%s\nsince=%s\n' "$$" "$runid" "$(date +%s)" >holder.tmp &&
	mv -f holder.tmp holder

log() {
	printf '%s constel: %s\n' "$(date '+%F %T')" "$*" >>run.log 2>/dev/null
}

# The writes the protocol relies on: each fails closed (the caller acts on it).
state() {
	printf '%s\n' "run=$runid" "$@" >state.tmp && mv -f state.tmp state
}
pending() {
	printf '%s\n' "run=$runid" "$@" >"$lib/pending.tmp" && mv -f "$lib/pending.tmp" "$lib/pending"
}

gen_of() {
	l=$(readlink "$profile" 2>/dev/null) || l=
	l=${l##*/}
	l=${l#system-}
	l=${l%-link}
	case $l in '' | *[!0-9]*) echo 0 ;; *) echo "$l" ;; esac
}

# what $current resolves to, or nothing
running_now() {
	if [ -e "$current" ]; then readlink -f "$current"; fi
}

notified=
notify() {
	[ -n "$notified" ] && return
	notified=1
	{ echo "$1" >&3; } 2>/dev/null
	exec 3>&-
}

# finish RESULT [REASON]: the end of every run
finish() {
	result=$1
	reason=${2:-}
	log "end: $result${reason:+: $reason}"
	state phase=done "result=$result" "gen=$new" "prev=$prev" "path=$target" \
		"running=$(running_now)" "profile=$(readlink -f "$profile" 2>/dev/null)" \
		"reason=$reason" || notify unrecorded
	# a failed restore leaves the pending record for the next run to repair
	if [ "$result" != restore-failed ] && [ -e "$lib/pending" ]; then
		rm -f "$lib/pending" || log "could not remove $lib/pending"
	fi
	tail -c 65536 run.log >>activation.log 2>/dev/null
	# the lock is free before anyone hears that the run is done: a run
	# started right after this one's end is not refused
	exec 9>&-
	notify finished
	exit 0
}

# activate SYSTEM GOAL: switch-to-configuration under a supervisor in a
# session of its own, waited for. The supervisor runs it in a process group
# of its own and ends that group after $limit seconds (exit 124), or at once
# when the watchdog dies (SIGKILL, OOM): an activation nobody watches must
# not go on beside the next run's repair. The supervisor holds the lock too
# (not its sleeps), so the next run starts only once that group is ended.
# Else it exits with the activation's status. A process is alive until it
# exits: a zombie not yet waited for is not.
# shellcheck disable=SC2016 # the supervisor's own variables
supervisor='alive() {
	s=""
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}
setsid "$3/bin/switch-to-configuration" "$4" </dev/null 9>&- &
a=$!
end=$(($(date +%s) + $1)) i=0 now=0
while alive "$a"; do
	[ $((i % 10)) = 0 ] && now=$(date +%s)
	if [ "$now" -ge "$end" ] || ! alive "$2"; then
		kill -TERM -"$a" "$a" 2>/dev/null
		i=0
		while [ $i -lt 20 ] && alive "$a"; do sleep 0.1 9>&-; i=$((i + 1)); done
		kill -KILL -"$a" "$a" 2>/dev/null
		wait "$a"
		exit 124
	fi
	sleep 0.1 9>&-
	i=$((i + 1))
done
wait "$a"'
activate() {
	log "activating $1 ($2)"
	setsid sh -c "$supervisor" sh "$limit" "$$" "$1" "$2" </dev/null >>run.log 2>&1 3>&- &
	wait "$!"
}

nixenv() {
	nix-env -p "$profile" "$@" </dev/null >>run.log 2>&1 3>&- 9>&-
}

# restore WHY: back to the state before the run: the system that ran runs
# again, the profile points at the generation it pointed at. Sets $result:
# rolled-back, restore-failed, or failed when nothing ran before.
restore() {
	log "restoring: $1"
	if [ -z "$running" ] && [ "$prev" = 0 ]; then
		result=failed
		log "nothing ran before this run: nothing to restore"
		return
	fi
	result=restore-failed
	ok=1
	if [ "$new" != "$prev" ]; then
		if [ "$prev" -gt 0 ]; then
			nixenv --switch-generation "$prev" || ok=0
		else
			ok=0
			log "the profile had no generation before"
		fi
	fi
	[ $ok = 1 ] || return
	case $goal in
	switch)
		if [ -z "$running" ]; then
			activate "$prevpath" switch || ok=0
		elif [ "$running" = "$prevpath" ] || [ -z "$prevpath" ]; then
			activate "$running" switch || ok=0
		else
			# a generation staged with `boot` stays the boot default
			activate "$prevpath" boot || ok=0
			[ $ok = 0 ] || activate "$running" test || ok=0
		fi
		;;
	boot)
		if [ -n "$prevpath" ]; then activate "$prevpath" boot || ok=0; fi
		;;
	test)
		if [ -n "$running" ]; then activate "$running" test || ok=0; else ok=0; fi
		;;
	esac
	[ $ok = 1 ] || return
	result=rolled-back
	if [ "$delete" = 1 ] && [ "$new" -gt 0 ] && [ "$new" != "$prev" ]; then
		nixenv --delete-generations "$new" || log "could not delete generation $new"
	fi
}

# A pending record without a live watchdog (we hold the lock): an earlier
# run died half-way. Put the host back where that run found it.
repair() {
	p_run='' p_prev='' p_prevpath='' p_running='' p_goal=''
	while IFS= read -r l; do
		case $l in
		run=*) p_run=${l#run=} ;;
		prev=*) p_prev=${l#prev=} ;;
		prevpath=*) p_prevpath=${l#prevpath=} ;;
		running=*) p_running=${l#running=} ;;
		goal=*) p_goal=${l#goal=} ;;
		esac
	done <"$lib/pending"
	case $p_prev in '' | *[!0-9]*) p_prev=0 ;; esac
	case $p_prevpath in "$store"/*) ;; *) p_prevpath="" ;; esac
	case $p_running in "$store"/*) ;; *) p_running="" ;; esac
	case $p_goal in switch | boot | test) ;; *) p_goal=switch ;; esac
	log "repairing what the interrupted run $p_run left"
	saved_goal=$goal
	goal=$p_goal prev=$p_prev prevpath=$p_prevpath running=$p_running new=$(gen_of)
	restore "interrupted run $p_run"
	goal=$saved_goal
	case $result in
	rolled-back) repaired=$p_run ;;
	failed) repaired=$p_run ;; # nothing ran before it: nothing to put back
	*)
		target=''
		finish restore-failed "could not repair what the interrupted run $p_run left"
		;;
	esac
	rm -f "$lib/pending" || finish restore-failed "cannot remove $lib/pending"
}

new=0 prev=0 target='' prevpath='' running='' repaired=''
if [ -s activation.log ] && [ "$(wc -c <activation.log)" -gt $LOG_MAX ]; then
	mv -f activation.log activation.log.1
fi
printf "" >run.log || finish failed "cannot write $run/run.log (nothing was changed)"
if [ -e "$lib/pending" ]; then repair; fi
prev=$(gen_of)
new=$prev
if [ -e "$profile" ]; then prevpath=$(readlink -f "$profile"); fi
running=$(running_now)
case $mode in
path) target=$value ;;
restore)
	case $value in '' | *[!0-9]*) finish failed "bad generation '$value'" ;; esac
	case $was in "$store"/* | '') ;; *) finish failed "bad running system '$was'" ;; esac
	target=$running
	prev=$value
	prevpath=$(readlink -f "$profile-$value-link" 2>/dev/null) || prevpath=''
	running=$was
	pending "goal=$goal" "prev=$prev" "prevpath=$prevpath" "running=$running" "new=$new" ||
		finish failed "cannot write $lib/pending (nothing was changed)"
	restore "constel asked to restore the host as it was before its run"
	target=$running
	finish "$result" "restored as it was before the run"
	;;
gen)
	target=$(readlink -f "$profile-$value-link" 2>/dev/null) || target=
	if [ -z "$target" ] || [ ! -e "$target" ]; then finish failed "no generation $value"; fi
	;;
repair)
	if [ -n "$repaired" ]; then finish repaired "restored what the interrupted run $repaired left"; fi
	finish ok "nothing to repair"
	;;
*) finish failed "unknown mode '$mode'" ;;
esac
[ -x "$target/bin/switch-to-configuration" ] ||
	finish failed "$target has no bin/switch-to-configuration (nothing was changed)"

if [ "$goal" = dry-activate ]; then
	state phase=activating "gen=$new" "prev=$prev" "path=$target" ||
		finish failed "cannot write $run/state (nothing was changed)"
	activate "$target" dry-activate || finish failed "switch-to-configuration dry-activate exited with status $?"
	finish ok
fi

pending "goal=$goal" "prev=$prev" "prevpath=$prevpath" "running=$running" "target=$target" ||
	finish failed "cannot write $lib/pending (nothing was changed)"
state phase=activating "gen=$new" "prev=$prev" "path=$target" ||
	finish failed "cannot write $run/state (nothing was changed)"
case $goal in
switch | boot)
	if [ "$mode" = path ]; then
		nixenv --set "$target" || why="nix-env --set failed"
	else
		nixenv --switch-generation "$value" || why="nix-env --switch-generation failed"
	fi
	new=$(gen_of)
	if [ -n "${why:-}" ]; then
		if [ "$new" != "$prev" ]; then restore "$why"; else result=failed; fi
		finish "$result" "$why"
	fi
	pending "goal=$goal" "prev=$prev" "prevpath=$prevpath" "running=$running" \
		"target=$target" "new=$new" || {
		restore "cannot update $lib/pending"
		finish "$result" "cannot update $lib/pending"
	}
	state phase=activating "gen=$new" "prev=$prev" "path=$target" || {
		restore "cannot write $run/state"
		finish "$result" "cannot write $run/state"
	}
	;;
esac

activate "$target" "$goal"
rc=$?
if [ $rc -ne 0 ]; then
	if [ $rc -eq 124 ]; then
		why="activation timed out after ${limit}s"
	else
		why="switch-to-configuration $goal exited with status $rc"
	fi
	[ "$auto" = 1 ] || finish failed "$why (no auto rollback: the host was left as it is)"
	restore "$why"
	finish "$result" "$why"
fi
case $goal in
switch | test)
	if [ "$confirm" -gt 0 ]; then
		if ! printf "" >"canary.$runid"; then
			restore "cannot write the canary"
			finish "$result" "cannot write $run/canary.$runid (no magic rollback possible)"
		fi
		state phase=awaiting-confirm "gen=$new" "prev=$prev" "path=$target" || {
			rm -f "canary.$runid"
			restore "cannot write $run/state"
			finish "$result" "cannot write $run/state"
		}
		notify awaiting-confirm
		ticks=0
		while [ -e "canary.$runid" ] && [ $ticks -lt $((confirm * 20)) ]; do
			sleep 0.05 3>&- 9>&-
			ticks=$((ticks + 1))
		done
		if [ -e "canary.$runid" ]; then
			rm -f "canary.$runid"
			why="not confirmed within ${confirm}s (magic rollback)"
			restore "$why"
			finish "$result" "$why"
		fi
	fi
	;;
esac
finish ok
