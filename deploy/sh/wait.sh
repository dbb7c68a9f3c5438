# constel wait (POSIX sh): follows a run of the watchdog from a later session.
#
#   wait.sh RUNID SECONDS [confirm]
#
# With `confirm`, first removes the run's canary (the proof that this new
# session got in: magic rollback then does not happen). Then waits up to
# SECONDS for the run to finish and prints its state and output.
# Exit 3: the host has no state of this run and no pending record of it
# (the run never started here; nothing was removed).
# Exit 4: the run was interrupted: its watchdog died before finishing (the
# lock is free), or its state is gone (a reboot, a wiped /run) while its
# pending record on /var/lib says it had started; `interrupted=RUNID`.
set -u
run=${CONSTEL_RUN_DIR:-/run/constel}
lib=${CONSTEL_LIB_DIR:-/var/lib/constel}
of_run() {
	r='' p=''
	while IFS= read -r l; do
		case $l in run=*) r=${l#run=} ;; phase=*) p=${l#phase=} ;; esac
	done 2>/dev/null <"$run/state"
}
# whether the pending record on persistent storage is this run's
pending_of_run() {
	while IFS= read -r l; do
		case $l in run=*) [ "${l#run=}" = "$1" ] && return 0 ;; esac
	done 2>/dev/null <"$lib/pending"
	return 1
}
# the watchdog holds the lock for its whole life: a free lock is a dead one
holder_alive() {
	[ -e "$run/lock" ] && ! flock -n "$run/lock" true 2>/dev/null
}
interrupted() {
	echo "interrupted=$1"
	echo "why=$2"
	cat "$run/state" 2>/dev/null
	echo "--- output ---"
	tail -c 16384 "$run/run.log" 2>/dev/null
	exit 4
}
# this run's state, else exit 3 or 4
of_this_run() {
	of_run
	[ "$r" = "$1" ] && return
	if pending_of_run "$1"; then interrupted "$1" "the host has no state of the run"; fi
	cat "$run/state" 2>/dev/null
	exit 3
}
of_this_run "$1"
if [ "${3:-}" = confirm ]; then
	rm -f "$run/canary.$1" || {
		echo "error=cannot remove $run/canary.$1"
		exit 1
	}
fi
i=0
while [ "$p" != "done" ] && [ $i -lt $(($2 * 20)) ]; do
	if [ $((i % 10)) = 0 ] && ! holder_alive; then
		# read again: it may have finished between the two looks
		of_this_run "$1"
		[ "$p" = "done" ] && break
		interrupted "$1" "its watchdog died before finishing"
	fi
	sleep 0.05
	i=$((i + 1))
	of_this_run "$1"
done
cat "$run/state"
echo "--- output ---"
tail -c 16384 "$run/run.log" 2>/dev/null
