# Body of bin/switch-to-configuration of a simulated NixOS system
# (tests/fleet). Sourced with SYSTEM HOST GENERATION KNOB PORTS SW set.
# Runs under /bin/sh (x86_64) or the system's own aarch64 busybox sh.
#
# switch|test: /run/current-system -> SYSTEM, network link up, listeners on
#              PORTS restarted (pid files in /run/fleet/listeners)
# boot, dry-activate: only log
# stage2: what the fleet's boot runs (tests/fleet/fleet reboot), as NixOS's
#         stage 2 activates the system the profile points at: a switch
# switch, test, stage2 also write the units' states in /run/fleet/units
# (read by the system's bin/systemctl): UNIT.service per service, active
# when it listens, and fleet-sidecar.service.
# Every goal appends "HOST GENERATION GOAL start" and, on success,
# "HOST GENERATION GOAL done" to /var/lib/fleet/activation.log (and to
# /var/lib/fleet/order.log when that exists: tests link it to one shared file).
# KNOB: fail (exit 1 after start), hang (sleep 3600 after start),
#       cutnet (switch, log done, then take eth0 down),
#       noservice (stop old listeners, start none),
#       unitfail (switch; fleet-sidecar.service failed),
#       http500 (switch; the listeners answer GET /healthz with 500),
#       noboot (stage2 fails: the host does not come back from a reboot),
#       badboot (stage2 fails with 3: the boot falls back to the generation before).
GOAL=${1:-}
case $GOAL in
switch | boot | test | dry-activate | stage2) ;;
*)
	echo "usage: $SYSTEM/bin/switch-to-configuration switch|boot|test|dry-activate" >&2
	exit 1
	;;
esac

mkdir -p /var/lib/fleet /run/fleet/listeners
fleet_log() {
	echo "$HOST $GENERATION $GOAL $1" >>/var/lib/fleet/activation.log
	# a test may link order.log of every host to one file, to see the fleet's order
	if [ -e /var/lib/fleet/order.log ]; then
		echo "$HOST $GENERATION $GOAL $1" >>/var/lib/fleet/order.log
	fi
}
fleet_log start

if [ "$GOAL" = dry-activate ]; then
	echo "would activate $SYSTEM"
	fleet_log done
	exit 0
fi

if [ "$GOAL" = stage2 ] && [ "$KNOB" = noboot ]; then
	echo "switch-to-configuration: $HOST generation $GENERATION: simulated boot failure" >&2
	exit 1
fi
if [ "$GOAL" = stage2 ] && [ "$KNOB" = badboot ]; then
	# exit 3: the fleet's boot loader falls back to the generation before
	echo "switch-to-configuration: $HOST generation $GENERATION: simulated boot failure (fallback)" >&2
	exit 3
fi

[ "$GOAL" = stage2 ] || case $KNOB in
fail)
	echo "switch-to-configuration: $HOST generation $GENERATION: simulated activation failure" >&2
	exit 1
	;;
hang)
	echo "switch-to-configuration: $HOST generation $GENERATION: simulated hang" >&2
	exec sleep 3600
	;;
esac

if [ "$GOAL" = boot ]; then
	echo "$HOST: generation $GENERATION will be activated at next boot"
	fleet_log done
	exit 0
fi

# switch | test
ln -sfn "$SYSTEM" /run/current-system
ip link set lo up 2>/dev/null
ip link set eth0 up 2>/dev/null

# a listener we started: alive, not a zombie, a fleet-listen, and in this
# host's own mount namespace (hosts share the machine's PID numbers, so a
# stale pid file may name a process of another host by now)
fleet_ours() {
	[ -r "/proc/$1/cmdline" ] || return 1
	grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null && return 1
	[ "$(readlink "/proc/$1/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" | grep -Eq 'fleet-listen|busybox nc -ll'
}

for f in /run/fleet/listeners/*.pid; do
	[ -e "$f" ] || continue
	pid=$(cat "$f")
	rm -f "$f"
	case $pid in '' | *[!0-9]*) continue ;; esac
	fleet_ours "$pid" || continue
	kill "$pid" 2>/dev/null
	i=0
	while [ $i -lt 50 ] && fleet_ours "$pid"; do
		sleep 0.1
		i=$((i + 1))
	done
	fleet_ours "$pid" && kill -9 "$pid" 2>/dev/null
done

fleet_listening() {
	hex=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":$hex [0-9A-F:]* 0A "
}

HTTP_STATUS=200
[ "$KNOB" = http500 ] && HTTP_STATUS=500
if [ "$KNOB" != noservice ]; then
	for port in $PORTS; do
		setsid "$SW/bin/fleet-listen" "$port" "/run/fleet/listeners/$port.pid" "$HTTP_STATUS" \
			</dev/null >/dev/null 2>&1 &
	done
	for port in $PORTS; do
		i=0
		while [ $i -lt 100 ] && ! fleet_listening "$port"; do
			sleep 0.1
			i=$((i + 1))
		done
		fleet_listening "$port" || echo "switch-to-configuration: warning: nothing listens on port $port" >&2
	done
fi

# the units of this system, and their states
rm -rf /run/fleet/units
mkdir -p /run/fleet/units
while read -r unit; do
	[ -n "$unit" ] || continue
	state=active
	if [ "$unit" = fleet-sidecar.service ]; then
		[ "$KNOB" = unitfail ] && state=failed
	elif [ "$KNOB" = noservice ]; then
		state=inactive
	else
		while read -r name port; do
			[ "$name.service" = "$unit" ] || continue
			fleet_listening "$port" || state=failed
		done <"$SYSTEM/etc/fleet/services"
	fi
	echo "$state" >"/run/fleet/units/$unit"
done <"$SYSTEM/etc/fleet/units"

echo "$HOST: switched to generation $GENERATION ($GOAL)"
fleet_log done
if [ "$KNOB" = cutnet ]; then
	echo "$HOST: taking eth0 down (cutnet)" >&2
	ip link set eth0 down
fi
exit 0
