# constel query (POSIX sh): what this host runs now, in key=value lines.
#   gen, profile, current, switched   the system profile and the running system
#   locked=1 holder_pid/run/since     a live watchdog holds the deploy lock
#   interrupted=RUN interrupted_*     a run died half-way (its pending record)
#   record_revision                   what the last deployment record names
#   boot_id                           this boot's id (a reboot changes it)
#   system_state, failed_units        `systemctl is-system-running` and the
#                                     failed units (space-separated), when
#                                     the host has systemctl
set -u
run=${CONSTEL_RUN_DIR:-/run/constel}
lib=${CONSTEL_LIB_DIR:-/var/lib/constel}
profile=${CONSTEL_PROFILE:-/nix/var/nix/profiles/system}
current=${CONSTEL_CURRENT:-/run/current-system}
l=$(readlink "$profile" 2>/dev/null) || l=''
l=${l##*/}
l=${l#system-}
l=${l%-link}
# empty: the profile has no generation (a host never deployed)
case $l in *[!0-9]*) l='' ;; esac
echo "gen=$l"
if [ -e "$profile" ]; then echo "profile=$(readlink -f "$profile")"; fi
if [ -e "$current" ]; then
	echo "current=$(readlink -f "$current")"
	# the link's own time (not its target's, which the store sets to 1970)
	echo "switched=$(stat -c %y "$current" 2>/dev/null | cut -c1-19)"
fi
locked=''
if [ -e "$run/lock" ] && ! flock -n "$run/lock" true 2>/dev/null; then
	locked=1
	echo "locked=1"
	while IFS= read -r h; do echo "holder_$h"; done 2>/dev/null <"$run/holder"
fi
if [ -z "$locked" ] && [ -e "$lib/pending" ]; then
	while IFS= read -r h; do
		case $h in
		run=*) echo "interrupted=${h#run=}" ;;
		*) echo "interrupted_$h" ;;
		esac
	done <"$lib/pending"
fi
if [ -e "$lib/deployment.json" ]; then
	echo "record_revision=$(sed -n 's/.*"revision":"\([^"]*\)".*/\1/p' "$lib/deployment.json")"
fi
if [ -r /proc/sys/kernel/random/boot_id ]; then
	echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
fi
if command -v systemctl >/dev/null 2>&1; then
	echo "system_state=$(systemctl is-system-running 2>/dev/null)"
	printf 'failed_units='
	systemctl --failed --plain --no-legend 2>/dev/null | while read -r u _; do
		case $u in *.*) printf '%s ' "$u" ;; esac
	done
	echo
fi
true
