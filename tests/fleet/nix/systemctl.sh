# Body of bin/systemctl of the simulated NixOS systems (tests/fleet), run by
# the system's own shell. It answers, as systemd's does, for the units the
# running system declared: /run/fleet/units/UNIT holds the unit's
# ActiveState (active, failed, inactive), written by switch-to-configuration.
#
#   systemctl is-system-running        running | degraded (exit 1) | offline (exit 1)
#   systemctl --failed | list-units [--failed|--state=S] [--all] [--plain] [--no-legend]
#   systemctl show UNIT... [-p P[,P]|--property=P] [--value]
#   systemctl is-active|is-failed UNIT...
#   systemctl reboot                   asks the fleet to reboot this host
#                                      (/var/lib/fleet/power, read by the fleet's
#                                      power controller, tests/fleet/fleet)
U=/run/fleet/units

unit_state() {
	s=inactive
	if [ -r "$U/$1" ]; then read -r s <"$U/$1" || s=inactive; fi
	echo "$s"
}

list() { # list WANTED LEGEND: WANTED '' for every unit
	n=0
	[ "$2" = 1 ] && printf '%-28s %-7s %-8s %-8s %s\n' UNIT LOAD ACTIVE SUB DESCRIPTION
	for f in "$U"/*; do
		[ -e "$f" ] || continue
		u=${f##*/}
		s=$(unit_state "$u")
		[ -z "$1" ] || [ "$s" = "$1" ] || continue
		sub=running
		[ "$s" = active ] || sub=$s
		[ "$s" = inactive ] && sub=dead
		printf '%-28s %-7s %-8s %-8s %s\n' "$u" loaded "$s" "$sub" "simulated unit $u"
		n=$((n + 1))
	done
	[ "$2" = 1 ] && printf '\n%s loaded units listed.\n' "$n"
	return 0
}

cmd='' want='' legend=1 props='' value=0 units=''
for a in "$@"; do
	case $a in
	--failed) want=failed ;;
	--state=*) want=${a#--state=} ;;
	--no-legend) legend=0 ;;
	--plain | --all | -a | --no-pager | --type=* | -q | --quiet | --system) ;;
	--property=*) props="$props,${a#--property=}" ;;
	--value) value=1 ;;
	-p) props="$props,-p" ;;
	-*) echo "systemctl: unrecognized option '$a'" >&2 && exit 1 ;;
	*)
		case $props in *,-p)
			props="${props%,-p},$a"
			continue
			;;
		esac
		if [ -z "$cmd" ]; then cmd=$a; else units="$units $a"; fi
		;;
	esac
done
[ -n "$cmd" ] || cmd=list-units

case $cmd in
list-units) list "$want" "$legend" ;;
is-system-running)
	if [ ! -d "$U" ]; then
		echo offline
		exit 1
	fi
	for f in "$U"/*; do
		[ -e "$f" ] || continue
		if [ "$(unit_state "${f##*/}")" = failed ]; then
			echo degraded
			exit 1
		fi
	done
	echo running
	;;
is-active | is-failed)
	rc=1
	for u in $units; do
		s=$(unit_state "$u")
		echo "$s"
		[ "$cmd" = is-active ] && [ "$s" = active ] && rc=0
		[ "$cmd" = is-failed ] && [ "$s" = failed ] && rc=0
	done
	exit $rc
	;;
show)
	first=1
	for u in $units; do
		[ $first = 1 ] || echo
		first=0
		s=$(unit_state "$u")
		load=loaded
		[ -e "$U/$u" ] || load=not-found
		res=success
		[ "$s" = failed ] && res=exit-code
		for kv in "Id=$u" "LoadState=$load" "ActiveState=$s" "SubState=$s" "Result=$res" \
			"Description=simulated unit $u"; do
			k=${kv%%=*}
			case ,$props, in ,, | *",$k,"*) ;; *) continue ;; esac
			if [ $value = 1 ]; then echo "${kv#*=}"; else echo "$kv"; fi
		done
	done
	;;
reboot)
	mkdir -p /var/lib/fleet && echo reboot >/var/lib/fleet/power
	;;
*)
	echo "systemctl: unknown command '$cmd' (simulated systemctl, tests/fleet)" >&2
	exit 1
	;;
esac
