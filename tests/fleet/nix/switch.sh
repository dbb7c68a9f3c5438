# Body of bin/switch-to-configuration of a simulated NixOS system
# (tests/fleet). Sourced with SYSTEM HOST GENERATION KNOB PORTS SW set.
# Runs under /bin/sh (x86_64) or the system's own aarch64 busybox sh.
#
# switch|test: /run/current-system -> SYSTEM, network link up, listeners on
#              PORTS restarted (pid files in /run/fleet/listeners)
# boot, dry-activate: only log
# Every goal appends "HOST GENERATION GOAL start" and, on success,
# "HOST GENERATION GOAL done" to /var/lib/fleet/activation.log (and to
# /var/lib/fleet/order.log when that exists: tests link it to one shared file).
# KNOB: fail (exit 1 after start), hang (sleep 3600 after start),
#       cutnet (switch, log done, then take eth0 down),
#       noservice (stop old listeners, start none).
GOAL=${1:-}
case $GOAL in
switch | boot | test | dry-activate) ;;
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

case $KNOB in
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

if [ "$KNOB" != noservice ]; then
	for port in $PORTS; do
		setsid "$SW/bin/fleet-listen" "$port" "/run/fleet/listeners/$port.pid" </dev/null >/dev/null 2>&1 &
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

echo "$HOST: switched to generation $GENERATION ($GOAL)"
fleet_log done
if [ "$KNOB" = cutnet ]; then
	echo "$HOST: taking eth0 down (cutnet)" >&2
	ip link set eth0 down
fi
exit 0
