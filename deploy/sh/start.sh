# constel start (POSIX sh): takes the host's deploy lock, starts the watchdog
# (its script arrives on stdin) and answers at the watchdog's first
# milestone (awaiting-confirm, or finished) with the run's state.
#
#   start.sh RUNID MODE VALUE GOAL CONFIRM LIMIT AUTO DELETE RUNNING  (watchdog.sh's)
#
# The lock is a flock on $run/lock taken before anything else and passed to
# the watchdog, which holds it for its whole life: two deploys never both
# pass it, and the kernel frees it when the watchdog dies (SIGKILL, OOM).
# Exit 75: the lock is held (holder_* lines say by whom); 70: a write failed.
set -u
umask 022
run=${CONSTEL_RUN_DIR:-/run/constel}
lib=${CONSTEL_LIB_DIR:-/var/lib/constel}
mkdir -p "$run" "$lib" || {
	echo "error=cannot create $run or $lib"
	exit 70
}
cd "$run" || exit 70
exec 9>>lock || {
	echo "error=cannot open $run/lock"
	exit 70
}
# the watchdog: from stdin, or (run by constel-host) the file beside this one
take_watchdog() {
	if [ -n "${CONSTEL_WATCHDOG:-}" ]; then
		cat "$CONSTEL_WATCHDOG" >watchdog.sh
	else
		cat >watchdog.sh
	fi
}
if ! flock -n 9; then
	echo "locked=1"
	while IFS= read -r l; do echo "holder_$l"; done 2>/dev/null <holder
	exit 75
fi
if ! { printf 'pid=%s\nrun=%s\nsince=%s\n' "$$" "$1" "$(date +%s)" >holder.tmp &&
	mv -f holder.tmp holder && take_watchdog &&
	printf 'run=%s\nphase=starting\n' "$1" >state.tmp && mv -f state.tmp state; }; then
	echo "error=cannot write in $run"
	exit 70
fi
# canaries of earlier runs: none of them is alive (we hold the lock)
rm -f canary.* events
if ! mkfifo events; then
	echo "error=cannot make the FIFO $run/events"
	exit 70
fi
# shellcheck disable=SC2094 # both ends of the FIFO, on purpose
exec 3<>events 4<events
rm -f events
setsid sh watchdog.sh "$@" </dev/null >/dev/null 2>&1 4<&- &
# only the watchdog holds the lock and writes the FIFO now: its milestone,
# or EOF if it died
exec 9>&- 3>&-
read -r milestone <&4
exec 4<&-
echo "milestone=${milestone:-none}"
cat state
echo "--- output ---"
tail -c 16384 run.log 2>/dev/null
