# constel wait (POSIX sh): follows a run of the watchdog from a later session.
#
#   wait.sh RUNID SECONDS [confirm]
#
# With `confirm`, first removes the run's canary (the proof that this new
# session got in: magic rollback then does not happen). Then waits up to
# SECONDS for the run to finish and prints its state and output. Exit 3:
# the host's state belongs to another run (nothing was removed).
set -u
run=${CONSTEL_RUN_DIR:-/run/constel}
cd "$run" 2>/dev/null || {
	echo "error=no $run"
	exit 3
}
of_run() {
	r='' p=''
	while IFS= read -r l; do
		case $l in run=*) r=${l#run=} ;; phase=*) p=${l#phase=} ;; esac
	done <state 2>/dev/null
}
of_run
if [ "$r" != "$1" ]; then
	cat state 2>/dev/null
	exit 3
fi
if [ "${3:-}" = confirm ]; then
	rm -f "canary.$1" || {
		echo "error=cannot remove $run/canary.$1"
		exit 1
	}
fi
i=0
while [ "$p" != "done" ] && [ $i -lt $(($2 * 20)) ]; do
	sleep 0.05
	i=$((i + 1))
	of_run
done
cat state
echo "--- output ---"
tail -c 16384 run.log 2>/dev/null
