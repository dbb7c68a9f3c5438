#!/bin/sh
# The simulated fleet itself (tests/fleet), with plain OpenSSH and the
# baseline deploy: SSH works as configured, every host has its own store,
# aarch64 systems are real aarch64 code activated under emulation,
# switch-to-configuration does what constel can observe, each commit makes
# new store paths only for the hosts it bumps, payloads have the size asked.
set -u
. "$(dirname "$0")/lib.sh"
need_root_and_netns
need_aarch64

fleet_up "$SMALL"
D=$FLEET_DIR

note "ssh -F DIR/ssh_config reaches each host, with its own namespaces"
for h in alpha beta gamma; do
	out=$(fleet_ssh $h 'hostname; ls -A /nix; cat /etc/nix/nix.conf; ip -4 -o addr show dev eth0') ||
		fail "ssh $h failed"
	[ "$(echo "$out" | head -n 1)" = $h ] || fail "$h: hostname is $(echo "$out" | head -n 1)"
	echo "$out" | grep -q "inet $(fleet_addr $h)/24" || fail "$h: not on its address: $out"
	echo "$out" | grep -q '^substituters =$' || fail "$h: nix.conf without empty substituters"
	echo "$out" | grep -q '^flake-registry = /dev/null$' || fail "$h: nix.conf flake-registry"
	# only the daemon's socket (and its var/nix) at start: no store yet
	[ -z "$(ls -A "$D/hosts/$h/nix/store" 2>/dev/null)" ] || fail "$h: /nix/store not empty at start"
	[ -S "$D/hosts/$h/nix/var/nix/daemon-socket/socket" ] || fail "$h: no nix-daemon socket"
done
fleet_ssh gamma 'grep -q "^extra-platforms = aarch64-linux" /etc/nix/nix.conf' || fail "gamma: no extra-platforms"
# a wrong host key is refused (StrictHostKeyChecking yes with DIR/known_hosts)
sed "s/^Host alpha$/Host alpha-wrongkey/; s/HostName $(fleet_addr alpha)$/HostName $(fleet_addr beta)/" \
	"$D/ssh_config" >"$D/ssh_config.wrong"
if ssh -F "$D/ssh_config.wrong" -o HostKeyAlias=alpha alpha-wrongkey true 2>"$D/wrong.err"; then
	fail "a host key mismatch was accepted"
fi
grep -q 'Host key verification failed' "$D/wrong.err" || fail "wrong host key: $(cat "$D/wrong.err")"

note "repository: flake and plain-Nix file build the same systems"
fleet_repo --payload beta=3:4
git -C "$D/repo" diff --quiet HEAD || fail "repo not committed"
[ -f "$D/repo/constellation.yaml" ] || fail "no constellation.yaml in repo"
P_ALPHA=$(fleet_path alpha)
P_BETA=$(fleet_path beta)
P_GAMMA=$(fleet_path gamma)
P_FILE=$(nix-build --no-out-link "$D/repo/fleet.nix" -A nixosConfigurations.alpha.config.system.build.toplevel) ||
	fail "nix-build fleet.nix failed"
[ "$P_FILE" = "$P_ALPHA" ] || fail "fleet.nix gives $P_FILE, flake gives $P_ALPHA"
n=$(nix-store -qR "$P_ALPHA" | wc -l)
[ "$n" -ge 4 ] || fail "alpha closure has only $n paths"
n=$(nix-store -qR "$P_BETA" | grep -c -- '-payload-beta-')
[ "$n" -eq 4 ] || fail "beta payload: $n paths, want 4"
size=$(du -scb $(nix-store -qR "$P_BETA" | grep -- '-payload-beta-') | tail -n 1 | cut -f 1)
[ "$size" -ge 3145728 ] && [ "$size" -lt 3200000 ] || fail "beta payload is $size bytes, want 3 MiB"

note "aarch64 system is aarch64 code"
file -L "$P_GAMMA/sw/bin/busybox" | grep -q 'ARM aarch64' || fail "gamma sw/bin/busybox: $(file -L "$P_GAMMA/sw/bin/busybox")"
head -n 1 "$P_GAMMA/bin/switch-to-configuration" | grep -q "^#!/nix/store/.*-fleet-sw-aarch64-linux/bin/busybox sh" ||
	fail "gamma switch-to-configuration is not run by the aarch64 busybox"
[ "$(cat "$P_GAMMA/system")" = aarch64-linux ] || fail "gamma system file"

note "baseline deploy of every host"
"$BASELINE" "$D" || { cat "$D"/baseline/*.log; fail "baseline-deploy failed"; }
for h in alpha beta gamma; do
	eval p=\$P_$(echo $h | tr a-z A-Z)
	[ "$(fleet_ssh $h readlink /run/current-system)" = "$p" ] || fail "$h: /run/current-system is not $p"
	[ "$(fleet_ssh $h readlink -f /nix/var/nix/profiles/system)" = "$p" ] || fail "$h: profile is not $p"
	[ "$(fleet_log $h)" = "$h 1 switch start
$h 1 switch done" ] || fail "$h: activation log: $(fleet_log $h)"
done
for hp in alpha:9091 alpha:8080 beta:8000 gamma:8090; do
	h=${hp%:*} port=${hp#*:}
	port_open "$(fleet_addr $h)" $port || fail "$h: nothing on $(fleet_addr $h):$port"
	fleet_exec $h /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)' $port ||
		fail "$h: nothing on 127.0.0.1:$port inside the host"
done

note "each host has its own store"
[ -e "$D/hosts/alpha/nix/store/${P_ALPHA#/nix/store/}" ] || fail "alpha's system not in alpha's store"
[ ! -e "$D/hosts/beta/nix/store/${P_ALPHA#/nix/store/}" ] || fail "alpha's system in beta's store"
fleet_ssh beta nix-store --check-validity "$P_ALPHA" 2>/dev/null && fail "beta's Nix knows alpha's system"
for p in $(nix-store -qR "$P_BETA" | grep -- -payload-); do
	[ ! -e "$D/hosts/alpha/nix/store/${p#/nix/store/}" ] || fail "beta's payload in alpha's store"
done

note "gamma activated under emulation"
pid=$(fleet_exec gamma cat /run/fleet/listeners/8090.pid)
exe=$(readlink /proc/$pid/exe)
case $exe in *qemu-aarch64*) ;; *) fail "gamma's listener runs $exe, not under qemu-aarch64" ;; esac
[ "$(fleet_ssh gamma /run/current-system/sw/bin/busybox uname -m)" = aarch64 ] || fail "gamma busybox uname -m"

note "a commit of one host: new paths for it only; listeners restarted"
old_pid=$(fleet_exec alpha cat /run/fleet/listeners/8080.pid)
fleet_commit --only alpha
P2_ALPHA=$(fleet_path alpha)
[ "$P2_ALPHA" != "$P_ALPHA" ] || fail "new generation, same store path"
case $P2_ALPHA in *-nixos-system-alpha-gen2) ;; *) fail "alpha gen2 path $P2_ALPHA" ;; esac
[ "$(fleet_path beta)" = "$P_BETA" ] || fail "beta changed though not bumped"
"$BASELINE" "$D" alpha || fail "baseline-deploy alpha gen2 failed"
grep -q 'copying 2 paths' "$D/baseline/alpha.log" || fail "gen2 copied more than toplevel+etc: $(cat "$D/baseline/alpha.log")"
new_pid=$(fleet_exec alpha cat /run/fleet/listeners/8080.pid)
[ "$new_pid" != "$old_pid" ] || fail "listener not restarted"
[ ! -d /proc/$old_pid ] || grep -q '^State:.*Z' /proc/$old_pid/status || fail "old listener $old_pid still runs"
port_open "$(fleet_addr alpha)" 8080 || fail "alpha:8080 not answering after gen2"
fleet_log alpha | tail -n 1 | grep -qx 'alpha 2 switch done' || fail "alpha log: $(fleet_log alpha)"

note "boot and dry-activate only log"
fleet_ssh alpha "$P_ALPHA/bin/switch-to-configuration boot && $P_ALPHA/bin/switch-to-configuration dry-activate" >/dev/null ||
	fail "boot/dry-activate failed"
[ "$(fleet_ssh alpha readlink /run/current-system)" = "$P2_ALPHA" ] || fail "boot changed /run/current-system"
[ "$(fleet_log alpha | tail -n 4)" = "alpha 1 boot start
alpha 1 boot done
alpha 1 dry-activate start
alpha 1 dry-activate done" ] || fail "boot/dry-activate log: $(fleet_log alpha)"
fleet_ssh alpha "$P_ALPHA/bin/switch-to-configuration bogus" 2>/dev/null && fail "bad goal accepted"

note "ok"
exit 0
