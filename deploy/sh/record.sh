# constel record (POSIX sh): the host's deployment records under $lib.
#   record.sh write       one JSON object on stdin: becomes deployment.json
#                         (what the host runs now, by constel's account)
#                         and a line of history.jsonl
#   record.sh history N   the newest N lines of history.jsonl
# The history is kept to its newest HISTORY_MAX lines.
set -u
lib=${CONSTEL_LIB_DIR:-/var/lib/constel}
HISTORY_MAX=1000
case ${1:-} in
write)
	mkdir -p "$lib" && cd "$lib" || exit 70
	cat >deployment.json.tmp &&
		cat deployment.json.tmp >>history.jsonl &&
		mv -f deployment.json.tmp deployment.json || exit 70
	if [ "$(wc -l <history.jsonl)" -gt $((HISTORY_MAX + HISTORY_MAX / 2)) ]; then
		tail -n $HISTORY_MAX history.jsonl >history.jsonl.tmp &&
			mv -f history.jsonl.tmp history.jsonl
	fi
	;;
history)
	tail -n "${2:-100}" "$lib/history.jsonl" 2>/dev/null
	true
	;;
*)
	echo "usage: record.sh write | history N" >&2
	exit 2
	;;
esac
