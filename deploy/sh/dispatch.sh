#!/bin/sh
# constel-host (POSIX sh): constel's host commands that need root, as one
# fixed file in the Nix store that a sudoers rule can name with its digest
# (docs/become.md; `constel sudoers USER` prints the rule):
#
#   constel-host check                 prints the user it runs as (0: root)
#   constel-host start ARGS            start.sh, its watchdog from beside it
#   constel-host wait ARGS             wait.sh
#   constel-host record write|history  record.sh
#   constel-host reboot                reboot.sh
#
# The scripts are the files next to this one: nothing of what it runs
# comes from its caller but the arguments (sudo resets the environment).
set -u
here=${0%/bin/*}
# a fixed PATH, not sudo's secure_path: the system's tools first (NixOS),
# then the usual places
PATH=/run/wrappers/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
case ${1:-} in
check)
	id -u
	;;
start | wait | record | reboot)
	name=$1
	shift
	CONSTEL_WATCHDOG=$here/watchdog.sh
	export CONSTEL_WATCHDOG
	exec /bin/sh "$here/$name.sh" "$@"
	;;
*)
	echo "usage: constel-host check | start ARGS | wait ARGS | record write|history N | reboot" >&2
	exit 2
	;;
esac
