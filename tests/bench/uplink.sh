#!/bin/sh
# Closure delivery behind a slow uplink (#16): the orchestrator's traffic to
# the hosts' sshd is limited to RATE (`fleet shape`: tc htb on the fleet's
# bridge, all hosts sharing it), while the hosts reach the fleet's binary
# cache (`fleet cache`, HTTP on the bridge) at full speed. In the same run,
# each on a fresh fleet (empty host stores):
#   A. 8 hosts, each closure SHARED_MB shared by all (in the "upstream"
#      cache) plus OWN_MB of its own:
#        push:    the user's script, nix-copy-closure --to, then activation
#                 (all hosts at once)
#        subst:   the same with --use-substitutes (nixos-rebuild
#                 --use-substitutes, the seed's script)
#        constel: constel deploy (substitutes on the destination)
#   B. no upstream cache; 8 hosts sharing LAN_MB; constel with
#      `cache: file://CACHE` on the LAN (served to the hosts over HTTP)
#      against push.
# Wall seconds and ratios; one round (the uplink time dominates: RATE is the
# bound, not this machine's noise).
#   tests/bench/uplink.sh   (root; writes tests/bench/results/uplink.txt)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/fleet/env.sh"
N=${N:-8} SHARED_MB=${SHARED_MB:-200} OWN_MB=${OWN_MB:-4} LAN_MB=${LAN_MB:-100} RATE=${RATE:-100mbit}
FLEET=$TOP/tests/fleet/fleet
MKREPO=$TOP/tests/fleet/mkrepo
CONSTEL=${CONSTEL:-$TOP/constel}
OUT=${OUT:-$TOP/tests/bench/results/uplink.txt}
WORK=$(mktemp -d /tmp/constel-bench-uplink.XXXXXX)
FLEETS=
cleanup() {
	for f in $FLEETS; do "$FLEET" down "$f" >/dev/null 2>&1; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 2; }
[ -x "$CONSTEL" ] || { echo "bench: no $CONSTEL (make constel)" >&2; exit 2; }
XDG_STATE_HOME=$WORK/state
export XDG_STATE_HOME
die() { echo "bench: $*" >&2; exit 1; }

HOSTS=
i=1
while [ $i -le "$N" ]; do HOSTS="$HOSTS h$i"; i=$((i + 1)); done
{
	echo "hosts:"
	for h in $HOSTS; do echo "  $h: {}"; done
} >"$WORK/inv.yaml"

# fleet NAME SHARED CACHE_INV: a fresh fleet $WORK/NAME with its repository;
# CACHE_INV=1: the inventory pushes to the fleet's cache
fleet() {
	_d=$WORK/$1
	FLEETS="$FLEETS $_d"
	FLEET_CACHE=1 "$FLEET" up "$_d" "$WORK/inv.yaml" >/dev/null || die "fleet up"
	_own=
	[ "$3" = own ] && for h in $HOSTS; do _own="$_own --payload $h=$OWN_MB:1"; done
	# shellcheck disable=SC2086 # the options are words
	"$MKREPO" "$_d" "$WORK/inv.yaml" --salt "bench-uplink-$2" --shared-payload "$2:8" $_own \
		>/dev/null || die "mkrepo"
	mkdir -p "$WORK/cache-$1"
	"$FLEET" cache "$_d" "$WORK/cache-$1" >/dev/null || die "fleet cache"
	"$FLEET" shape "$_d" "$RATE" || die "fleet shape"
}
# paths HOST: its system, built here
path() { "$MKREPO" path "$WORK/$1" "$2"; }
# upstream NAME: the shared part of every closure into the fleet's cache, signed
upstream() {
	for h in $HOSTS; do nix-store -qR "$(path "$1" "$h")"; done | grep -- '-payload-shared-' |
		sort -u >"$WORK/$1.shared"
	xargs nix store sign --key-file "$WORK/$1/signing.key" <"$WORK/$1.shared" || die "sign"
	xargs nix copy --to "file://$WORK/cache-$1" <"$WORK/$1.shared" || die "nix copy"
}
now() { date +%s.%N; }
# script NAME [--use-substitutes]: every host at once, copy then activate
script() {
	_d=$WORK/$1
	shift
	for h in $HOSTS; do
		(
			P=$(path "$(basename "$_d")" "$h")
			NIX_SSHOPTS="-F $_d/ssh_config" nix-copy-closure "$@" --to "$h" "$P" >/dev/null 2>&1 &&
				ssh -F "$_d/ssh_config" "$h" \
					"nix-env -p /nix/var/nix/profiles/system --set $P && $P/bin/switch-to-configuration switch" \
					>/dev/null 2>&1 || echo "bench: the script failed on $h" >&2
		) &
	done
	wait
}
timed() {
	_t0=$(now)
	"$@"
	awk -v a="$(now)" -v b="$_t0" 'BEGIN { printf "%.2f\n", a - b }'
}
run_constel() {
	"$CONSTEL" -i "$WORK/$1/repo/constellation.yaml" --ssh-config "$WORK/$1/ssh_config" \
		deploy --parallel "$N" --log-dir "$WORK/$1/logs" >"$WORK/$1.out" 2>&1 ||
		{ tail -n 30 "$WORK/$1.out" >&2; die "constel deploy failed on $1"; }
}
# what constel's copies sent, from its host logs
bytes_pushed() {
	grep -h "copied [0-9]* of" "$WORK/$1/logs/"*.log | sed 's/.*paths, \([0-9]*\) bytes.*/\1/' |
		awk '{ s += $1 } END { print s + 0 }'
}

echo "bench: A: $N hosts, ${SHARED_MB} MB shared (upstream cache) + ${OWN_MB} MB own, uplink $RATE" >&2
for f in a_push a_subst a_constel; do fleet "$f" "$SHARED_MB" own; done
for f in a_push a_subst a_constel; do
	for h in $HOSTS; do path "$f" "$h" >/dev/null || die "build"; done
	upstream "$f"
done
t_push=$(timed script a_push)
t_subst=$(timed script a_subst --use-substitutes)
t_constel=$(timed run_constel a_constel)
b_constel=$(bytes_pushed a_constel)

echo "bench: B: $N hosts sharing ${LAN_MB} MB, no upstream cache, cache: on the LAN" >&2
for f in b_push b_constel; do fleet "$f" "$LAN_MB" none; done
sed -i "1i defaults: { cache: 'file://$WORK/cache-b_constel?compression=none', signing_key: $WORK/b_constel/signing.key }" \
	"$WORK/b_constel/repo/constellation.yaml"
git -C "$WORK/b_constel/repo" commit -qam "bench: the fleet's cache" || die "git commit"
for f in b_push b_constel; do
	for h in $HOSTS; do path "$f" "$h" >/dev/null || die "build"; done
done
t_bpush=$(timed script b_push)
t_bconstel=$(timed run_constel b_constel)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'; }
{
	echo "# tests/bench/uplink.sh on $(date -u +%Y-%m-%d), $(nproc) cores; uplink $RATE"
	echo "# A: $N hosts, ${SHARED_MB} MB shared in the upstream cache + ${OWN_MB} MB own"
	printf 'push (nix-copy-closure)         %8.1f s\n' "$t_push"
	printf 'subst (--use-substitutes)       %8.1f s\n' "$t_subst"
	printf 'constel deploy                  %8.1f s   pushed %s bytes in all\n' "$t_constel" "$b_constel"
	echo "constel / push    $(ratio "$t_constel" "$t_push")   (target <= 0.2)"
	echo "constel / subst   $(ratio "$t_constel" "$t_subst")   (target <= 1.0)"
	echo "# B: $N hosts sharing ${LAN_MB} MB, no upstream cache; constel with cache: on the LAN"
	printf 'push (nix-copy-closure)         %8.1f s\n' "$t_bpush"
	printf 'constel deploy (cache:)         %8.1f s\n' "$t_bconstel"
	echo "constel / push    $(ratio "$t_bconstel" "$t_bpush")   (target <= 0.3)"
} | tee "$OUT"
