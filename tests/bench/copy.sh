#!/bin/sh
# Benchmark of transport's closure copy (ssh_copy_closure, through
# tests/tools/ssh-tool) against the baselines, in the same run, to one
# simulated host:
#   constel     ssh-tool copy HOST < closure
#   nix copy    nix copy --no-check-sigs --to ssh://HOST (NIX_SSHOPTS=-F ...)
#   raw ssh     cat of the payload files | ssh -F ... HOST 'cat >/dev/null'
# The closure is the host's system with a payload of SIZE MiB in PATHS paths
# (default 256 MiB in 50). Before each copy the host's store is emptied of
# the closure. Prints the median of RUNS (default 5) of each, throughputs,
# ratios, and the peak RSS of the constel copy (GNU time, the largest of the
# tool and its local `nix-store --export`).
# Targets: constel >= nix copy; constel >= 70% of raw ssh; peak RSS < 64 MB.
#
#   tests/bench/copy.sh [SIZE_MB [PATHS [RUNS]]]     (as root, like the fleet)
set -eu

size=${1:-256}
paths=${2:-50}
runs=${3:-5}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. tests/fleet/env.sh

dir=$(mktemp -d /tmp/constel-bench-copy.XXXXXX)
inv=$dir/inventory.yaml
cleanup() {
	tests/fleet/fleet down "$dir/fleet" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

printf 'hosts:\n  sink:\n    services: {}\n' >"$inv"
make -s tools >/dev/null || exit 1
tests/fleet/fleet up "$dir/fleet" "$inv" >/dev/null
cfg=$dir/fleet/ssh_config
tests/fleet/mkrepo "$dir/fleet" "$inv" --payload "sink=$size:$paths" >/dev/null
top_path=$(tests/fleet/mkrepo path "$dir/fleet" sink)
nix-store -qR "$top_path" >"$dir/closure"
n=$(wc -l <"$dir/closure")
grep -- '-payload-' "$dir/closure" >"$dir/payload-globs"
bytes=$(nix path-info -S "$top_path" | awk '{print $2}')
echo "closure: $n paths, $((bytes / 1048576)) MiB (NAR), to host 'sink' over the fleet bridge"

host_invalid() {
	tests/fleet/fleet exec "$dir/fleet" sink sh -c \
		"nix-store --check-validity --print-invalid $(tr '\n' ' ' <"$dir/closure") | wc -l"
}
empty_host() {
	# a previous copy's remote process may still hold a temporary root: retry
	for _try in 1 2 3 4 5 6 7 8 9 10; do
		# shellcheck disable=SC2046
		tests/fleet/fleet exec "$dir/fleet" sink nix-store --delete $(cat "$dir/closure") \
			>/dev/null 2>&1 || true
		[ "$(host_invalid)" = "$n" ] && break
		sleep 0.5
	done
	[ "$(host_invalid)" = "$n" ] || { echo "cannot empty the host's store" >&2; exit 1; }
	# the previous copy's dirty pages must not slow down the next one
	sync
}

secs() { # CMD...: runs it, prints its wall time in seconds
	_s=$(date +%s.%N)
	"$@"
	echo "$(date +%s.%N) $_s" | awk '{printf "%.3f", $1 - $2}'
}

run_constel() {
	/usr/bin/time -f '%M' -o "$dir/rss" env -u SSH_AUTH_SOCK build/ssh-tool -F "$cfg" \
		copy sink <"$dir/closure" 2>"$dir/constel.err" || { cat "$dir/constel.err"; exit 1; }
	cat "$dir/rss" >>"$dir/rss.all"
}
run_nix() {
	NIX_SSHOPTS="-F $cfg" nix copy --no-check-sigs --to ssh://sink "$top_path" 2>"$dir/nix.err" ||
		{ cat "$dir/nix.err"; exit 1; }
}
run_raw() {
	# shellcheck disable=SC2046
	cat $(cat "$dir/payload-globs") | ssh -F "$cfg" sink 'cat >/dev/null'
}

: >"$dir/rss.all"
for i in $(seq "$runs"); do
	# alternate which goes first: the disk's state after a delete is not neutral
	for tool in $(if [ $((i % 2)) = 1 ]; then echo constel nix; else echo nix constel; fi); do
		empty_host
		secs "run_$tool" >>"$dir/t.$tool"
		echo >>"$dir/t.$tool"
	done
	sync
	secs run_raw >>"$dir/t.raw"
	echo >>"$dir/t.raw"
	echo "run $i: constel $(tail -n1 "$dir/t.constel")s, nix copy $(tail -n1 "$dir/t.nix")s," \
		"raw ssh $(tail -n1 "$dir/t.raw")s ($(grep -o 'missing=[0-9]* bytes=[0-9]*' \
		"$dir/constel.err"))"
done
# a last copy to the now complete host must move nothing
env -u SSH_AUTH_SOCK build/ssh-tool -F "$cfg" copy sink <"$dir/closure" 2>"$dir/again.err"
again=$(grep -o 'missing=[0-9]* bytes=[0-9]* seconds=[0-9.]* round_trips=[0-9]*' "$dir/again.err")

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(median "$dir/t.constel")
mn=$(median "$dir/t.nix")
mr=$(median "$dir/t.raw")
rss=$(sort -n "$dir/rss.all" | tail -n1)
raw_bytes=$(cat $(cat "$dir/payload-globs") | wc -c)
awk -v c="$mc" -v n="$mn" -v r="$mr" -v b="$bytes" -v rb="$raw_bytes" -v rss="$rss" \
	-v again="$again" -v runs="$runs" 'BEGIN {
	cs = b / c / 1048576; ns = b / n / 1048576; rs = rb / r / 1048576;
	printf "median of %d: constel %.2fs (%.0f MiB/s), nix copy %.2fs (%.0f MiB/s), raw ssh %.2fs (%.0f MiB/s)\n", runs, c, cs, n, ns, r, rs;
	printf "constel / nix copy speed: %.2fx (target >= 1)\n", cs / ns;
	printf "constel / raw ssh throughput: %.0f%% (target >= 70%%)\n", 100 * cs / rs;
	printf "constel peak RSS: %.1f MiB (target < 64)\n", rss / 1024;
	printf "unchanged host: %s\n", again;
	fail = (cs < ns) || (cs < 0.7 * rs) || (rss / 1024 >= 64);
	print fail ? "result: MISSED a target" : "result: all targets met";
}'
