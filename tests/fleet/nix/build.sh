# Builder of every tests/fleet derivation (run by /bin/sh on x86_64-linux,
# by the aarch64 /bin/busybox sh under qemu-user on aarch64-linux).
set -eu
if [ "$system" = aarch64-linux ]; then
	BB=/bin/busybox
else
	BB=
fi
if [ "$kind" = payload ]; then
	# one process (each costs a qemu start on aarch64): $BB dd, $BB head
	PATH=/usr/bin:/bin
elif [ "$system" = aarch64-linux ]; then
	# Only aarch64 busybox applets: nothing native sneaks into the build.
	/bin/busybox mkdir -p "$TMPDIR/bin"
	for a in cat chmod cp dd echo head ln mkdir printf rm; do
		/bin/busybox ln -s /bin/busybox "$TMPDIR/bin/$a"
	done
	PATH=$TMPDIR/bin
else
	PATH=/usr/bin:/bin
fi
export PATH

case $kind in
sw)
	mkdir -p "$out/bin"
	if [ "$system" = aarch64-linux ]; then
		cp /bin/busybox "$out/bin/busybox"
		chmod 0555 "$out/bin/busybox"
		# the applets stay off bin/ (the host's PATH has /run/current-system/sw/bin
		# first: each would start qemu); switch-to-configuration runs with them
		mkdir -p "$out/libexec/applets"
		for a in cat echo grep ip kill ln mkdir mv nc printf readlink rm setsid sh sleep tr true; do
			ln -s ../../bin/busybox "$out/libexec/applets/$a"
		done
		cat >"$out/bin/fleet-listen" <<EOS
#!$out/bin/busybox sh
# fleet-listen PORT PIDFILE [STATUS]: accept every TCP connection on PORT;
# one that sends an HTTP request gets an answer (libexec/fleet-http).
echo \$\$ >"\$2"
exec $out/bin/busybox nc -ll -p "\$1" -e $out/libexec/fleet-http "\${3:-200}"
EOS
		cat >"$out/libexec/fleet-http" <<EOS
#!$out/bin/busybox sh
# fleet-http STATUS: one connection on stdin and stdout. GET /healthz is
# answered with STATUS, / with 200, anything else with 404; a connection
# that sends nothing (a port probe) is closed.
PATH=$out/libexec/applets
cr=\$(printf '\\r')
read -r -t 2 method path _ || exit 0
[ -n "\$method" ] || exit 0
while read -r -t 2 l; do [ -n "\${l%"\$cr"}" ] || break; done
case \$path in /healthz | /healthz\\?*) code=\$1 ;; / | /\\?*) code=200 ;; *) code=404 ;; esac
printf 'HTTP/1.0 %s Status\\r\\nContent-Length: 4\\r\\nConnection: close\\r\\n\\r\\n%s\\n' "\$code" "\$code"
EOS
		chmod 0555 "$out/libexec/fleet-http"
	else
		{ echo '#!/usr/bin/python3 -I'; printf '%s\n' "$listenPy"; } >"$out/bin/fleet-listen"
	fi
	chmod 0555 "$out/bin/fleet-listen"
	if [ "$system" = aarch64-linux ]; then
		echo "#!$out/bin/busybox sh" >"$out/bin/systemctl"
		echo "PATH=$out/libexec/applets" >>"$out/bin/systemctl"
	else
		echo "#!/bin/sh" >"$out/bin/systemctl"
	fi
	printf '%s\n' "$systemctlSh" >>"$out/bin/systemctl"
	chmod 0555 "$out/bin/systemctl"
	;;
activation)
	mkdir -p "$out/share/fleet"
	printf '%s\n' "$switchSh" >"$out/share/fleet/switch.sh"
	;;
etc)
	mkdir -p "$out/etc/fleet"
	echo "$hostName" >"$out/etc/hostname"
	echo "$generation" >"$out/etc/fleet/generation"
	printf '%s\n' "$units" >"$out/etc/fleet/units"
	printf '%s\n' "$services" >"$out/etc/fleet/services"
	;;
payload)
	mib=$((bytes / 1048576))
	rest=$((bytes % 1048576))
	: >"$out"
	if [ "$mib" -gt 0 ]; then
		$BB dd if=/dev/urandom of="$out" bs=1048576 count="$mib" 2>/dev/null
	fi
	if [ "$rest" -gt 0 ]; then
		$BB head -c "$rest" /dev/urandom >>"$out"
	fi
	;;
toplevel)
	if [ "$knob" = buildfail ]; then
		echo "building the system of $hostName, generation $generation"
		echo "buildfail knob: the builder of $hostName fails here" >&2
		exit 1
	fi
	mkdir -p "$out/bin"
	if [ "$system" = aarch64-linux ]; then
		shell="$sw/bin/busybox sh"
		hostpath="$sw/libexec/applets"
	else
		shell=/bin/sh
		hostpath=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	fi
	cat >"$out/bin/switch-to-configuration" <<EOS
#!$shell
# switch-to-configuration of the simulated NixOS system $hostName,
# generation $generation ($system). See constel's tests/fleet/README.md.
SYSTEM=$out
HOST=$hostName
GENERATION=$generation
KNOB='$knob'
PORTS='$ports'
SW=$sw
PATH=$hostpath
export PATH
. $activation/share/fleet/switch.sh
EOS
	chmod 0555 "$out/bin/switch-to-configuration"
	echo "25.05.fleet-gen$generation" >"$out/nixos-version"
	echo "$system" >"$out/system"
	echo "$generation" >"$out/generation"
	ln -s "$sw" "$out/sw"
	ln -s "$etc/etc" "$out/etc"
	ln -s "$activation" "$out/activation"
	: >"$out/payload"
	for p in $payload; do echo "$p" >>"$out/payload"; done
	;;
*)
	echo "build.sh: unknown kind $kind" >&2
	exit 1
	;;
esac
