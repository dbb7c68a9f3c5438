#!/bin/sh
# Simulated fleets: nine hosts come up in seconds; two fleets run at once on
# different subnets; `fleet down` removes exactly what `up` made (no
# namespaces, links, mounts or processes left) and is idempotent.
# integration: alone (after down, nothing of 10.231.N may be left, and other
# tests would reuse the subnet numbers freed)
set -u
. "$(dirname "$0")/lib.sh"
need_root_and_netns

NINE=$TOP/tests/fleet/examples/nine.yaml
PAIR=$TOP/tests/fleet/examples/pair.yaml

# PIDs of live processes whose command line contains STRING
running() {
	for _p in /proc/[0-9]*; do
		grep -q '^State:.*Z' "$_p/status" 2>/dev/null && continue
		{ tr '\0' ' ' <"$_p/cmdline"; } 2>/dev/null | grep -qF -- "$1" && echo "${_p#/proc/}"
	done
}

# what exists of a fleet in DIR: netns, links, mounts, live processes
traces() {
	_st=$1/fleet.json
	_net=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["net"])' "$_st")
	ip netns list | grep "^cfl$_net-" | sed 's/^/netns /'
	ip -o link show | grep -E "^[0-9]+: cfl$_net[:@-]" | sed 's/^/link /'
	grep -F "$1" /proc/self/mountinfo | sed 's/^/mount /'
	running "$1" | sed 's/^/process /'
	ip -o -4 addr show | grep -F " 10.231.$_net." | sed 's/^/address /'
}

note "nine hosts"
start=$(date +%s%N)
fleet_up "$NINE"
ms=$((($(date +%s%N) - start) / 1000000))
echo "fleet up of 9 hosts: ${ms} ms"
[ $ms -lt 10000 ] || fail "9 hosts took ${ms} ms to come up"
N9=$FLEET_DIR
for h in galactica pegasus atlantia basestar raptor viper colonial cylon caprica; do
	fleet_ssh $h hostname >"$N9/$h.out" 2>&1 &
done
wait
for h in galactica pegasus atlantia basestar raptor viper colonial cylon caprica; do
	[ "$(cat "$N9/$h.out")" = $h ] || fail "ssh $h: $(cat "$N9/$h.out")"
done
"$FLEET" up "$N9" "$NINE" 2>/dev/null && fail "a second up in the same DIR was accepted"

note "two fleets at once"
A=$(mktemp -d /tmp/constel-fleet.XXXXXX)
B=$(mktemp -d /tmp/constel-fleet.XXXXXX)
_fleet_dirs="$_fleet_dirs $A $B"
"$FLEET" up "$A" "$SMALL" >"$A.up" 2>&1 &
pa=$!
"$FLEET" up "$B" "$PAIR" >"$B.up" 2>&1 &
pb=$!
wait $pa || fail "fleet A: $(cat "$A.up")"
wait $pb || fail "fleet B: $(cat "$B.up")"
rm -f "$A.up" "$B.up"
net() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["net"])' "$1/fleet.json"; }
na=$(net "$A") nb=$(net "$B") n9=$(net "$N9")
[ "$na" != "$nb" ] && [ "$na" != "$n9" ] && [ "$nb" != "$n9" ] || fail "fleets share a subnet: $n9 $na $nb"
for n in $na $nb $n9; do [ "$n" -lt 128 ] || fail "subnet 10.231.$n.0/24 outside 10.231.0.0/17"; done
[ "$(ssh -F "$A/ssh_config" alpha hostname)" = alpha ] || fail "fleet A alpha"
[ "$(ssh -F "$B/ssh_config" pollux hostname)" = pollux ] || fail "fleet B pollux"
# B's known_hosts does not accept A's hosts
if ssh -F "$B/ssh_config" -o HostName="$("$FLEET" addr "$A" alpha)" castor true 2>/dev/null; then
	fail "fleet B's castor key accepted for fleet A's alpha"
fi

note "processes started inside a host, through ssh and fleet exec"
ssh -F "$A/ssh_config" alpha 'setsid sleep 4242 </dev/null >/dev/null 2>&1 &' || fail "ssh start"
"$FLEET" exec "$A" beta sh -c 'setsid sleep 4343 </dev/null >/dev/null 2>&1 &' || fail "exec start"
ssh -F "$A/ssh_config" gamma 'mkdir -p /run/x && mount -t tmpfs tmpfs /run/x' || fail "mount inside gamma"
sleep 0.3
[ -n "$(running 'sleep 4242')" ] && [ -n "$(running 'sleep 4343')" ] || fail "sleepers not running"
grep -q ' /run/x ' /proc/self/mountinfo && fail "a mount inside gamma leaked to the orchestrator"

note "down A: A is gone, B and the nine are untouched"
[ -n "$(traces "$A")" ] || fail "no traces of A while up?"
"$FLEET" down "$A" || fail "fleet down A failed"
left=$(traces "$A")
[ -z "$left" ] || fail "after down, left of A: $left"
[ -z "$(running 'sleep 4242')" ] || fail "sleeper started over ssh survived down"
[ -z "$(running 'sleep 4343')" ] || fail "sleeper started by fleet exec survived down"
"$FLEET" down "$A" || fail "second down A failed"
[ "$(ssh -F "$B/ssh_config" castor hostname)" = castor ] || fail "fleet B broken by down A"
[ "$(fleet_ssh caprica hostname)" = caprica ] || fail "nine broken by down A"

note "down B and the nine: nothing left"
"$FLEET" down "$B" || fail "fleet down B failed"
"$FLEET" down "$N9" || fail "fleet down nine failed"
for d in "$B" "$N9"; do
	left=$(traces "$d")
	[ -z "$left" ] || fail "after down, left of $d: $left"
done
"$FLEET" exec "$B" castor true 2>/dev/null && fail "exec into a downed fleet"
note "ok"
exit 0
