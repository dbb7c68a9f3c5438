#!/bin/sh
# Evaluation benchmark: `constel build` (one evaluator per host, --eval-jobs
# at once, the evaluation cache) against one shared `nix eval` of every
# host's drvPath (colmena's hive), in the same run. 16 hosts of about 1.3 s
# of CPU and 150 MB kept each (tests/fleet/README.md, "Evaluation cost"),
# plus one host whose evaluation throws after its cost. No fleet: build only
# evaluates and builds on this machine; the systems are built once first, so
# both sides measure evaluation. Per round, alternating who goes first:
#   shared 8, constel 8, shared 16, constel 16, constel 16 + the broken host,
#   and a second constel build of the same commit (the cache of "constel 16").
# Wall time, the peak of the summed resident memory of the whole process
# tree (tests/bench/treepeak.c, sampled every 50 ms) and its CPU time;
# medians of RUNS rounds. Each run waits for an idle second first.
#   tests/bench/eval.sh [RUNS]   (root; writes tests/bench/results/eval.txt)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/fleet/env.sh"
RUNS=${1:-3}
MKREPO=$TOP/tests/fleet/mkrepo
CONSTEL=${CONSTEL:-$TOP/constel}
WORK=$(mktemp -d /tmp/constel-bench-eval.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
[ "$(id -u)" = 0 ] || { echo "bench: run as root (builds in the Nix store)" >&2; exit 2; }
[ -x "$CONSTEL" ] || { echo "bench: no $CONSTEL (make constel)" >&2; exit 2; }
cc -O2 -o "$WORK/treepeak" "$TOP/tests/bench/treepeak.c" || exit 2
XDG_STATE_HOME=$WORK/state
export XDG_STATE_HOME

H8="h01 h02 h03 h04 h05 h06 h07 h08"
H16="$H8 h09 h10 h11 h12 h13 h14 h15 h16"
{
	echo "hosts:"
	for h in $H16 hbad; do echo "  $h: {}"; done
} >"$WORK/inv.yaml"
"$MKREPO" "$WORK" "$WORK/inv.yaml" --salt "bench-eval-$$" --eval-cost '*=1.3:150' >/dev/null ||
	{ echo "bench: mkrepo failed" >&2; exit 1; }
"$MKREPO" commit "$WORK" --only hbad hbad=evalfail >/dev/null || { echo "bench: mkrepo commit failed" >&2; exit 1; }
R=$WORK/repo
# shared.nix HOSTS...: one evaluator, one getFlake, every host's drvPath in order
shared_nix() {
	{
		echo "let f = builtins.getFlake \"git+file://$R\"; in"
		echo "map (h: f.nixosConfigurations.\${h}.config.system.build.toplevel.drvPath) ["
		for h in "$@"; do echo "  \"$h\""; done
		echo "]"
	}
}
# shellcheck disable=SC2086 # host lists
shared_nix $H8 >"$WORK/shared8.nix"
# shellcheck disable=SC2086
shared_nix $H16 >"$WORK/shared16.nix"

# The machine may be shared: wait (up to 3 minutes) for a second in which
# its CPUs were at least 90% idle, so that other work does not take the
# cores a parallel evaluation needs. Counts the runs that started busy.
BUSY=0
cpu_times() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
quiet() {
	_tries=0
	while [ "$_tries" -lt 180 ]; do
		# shellcheck disable=SC2046 # two numbers
		set -- $(cpu_times)
		sleep 1
		# shellcheck disable=SC2046
		set -- "$@" $(cpu_times)
		[ "$(echo "($3 - $1) * 10 >= ($4 - $2) * 9" | bc)" = 1 ] && return 0
		_tries=$((_tries + 1))
	done
	BUSY=$((BUSY + 1))
}
# measure NAME CMD...: one run; appends "WALL PEAK_KB CPU" to $WORK/NAME.t
measure() {
	_n=$1
	shift
	quiet
	"$WORK/treepeak" "$WORK/one" "$@" >"$WORK/$_n.out" 2>"$WORK/$_n.err"
	_rc=$?
	cat "$WORK/one" >>"$WORK/$_n.t"
	return $_rc
}
shared() { # NAME FILE
	measure "$1" nix eval --impure --json --file "$2" ||
		{ echo "bench: shared evaluator failed" >&2; tail "$WORK/$1.err" >&2; exit 1; }
}
# cbuild NAME CACHE WANT HOSTS...: constel build with cache folder CACHE, exit status WANT
cbuild() {
	_n=$1 _cache=$2 _want=$3
	shift 3
	XDG_CACHE_HOME=$_cache measure "$_n" "$CONSTEL" -i "$R/constellation.yaml" build \
		--log-dir "$WORK/logs-$_n" "$@"
	_rc=$?
	[ "$_rc" = "$_want" ] || { echo "bench: constel build $_n exited $_rc" >&2; tail "$WORK/$_n.err" >&2; exit 1; }
	rm -rf "$WORK/logs-$_n"
}

echo "building the systems once..."
# shellcheck disable=SC2086
XDG_CACHE_HOME=$WORK/warm "$CONSTEL" -i "$R/constellation.yaml" build --no-eval-cache \
	--log-dir "$WORK/logs-warm" $H16 >/dev/null 2>&1 || { echo "bench: warm build failed" >&2; exit 1; }

for r in $(seq 1 "$RUNS"); do
	c=$WORK/cache-$r
	rm -rf "$c" "$c-8" "$c-bad"
	# shellcheck disable=SC2086
	if [ $((r % 2)) = 1 ]; then
		shared s8 "$WORK/shared8.nix"
		cbuild c8 "$c-8" 0 $H8
		shared s16 "$WORK/shared16.nix"
		cbuild c16 "$c" 0 $H16
	else
		cbuild c8 "$c-8" 0 $H8
		shared s8 "$WORK/shared8.nix"
		cbuild c16 "$c" 0 $H16
		shared s16 "$WORK/shared16.nix"
	fi
	# shellcheck disable=SC2086
	cbuild cbad "$c-bad" 1 $H16 hbad
	grep -q "evalfail knob: hbad does not evaluate" "$WORK/cbad.err" ||
		{ echo "bench: hbad did not fail with its message" >&2; exit 1; }
	# shellcheck disable=SC2086
	cbuild again "$c" 0 $H16
	grep -q "16 from the cache" "$WORK/again.err" ||
		{ echo "bench: the second build was evaluated again" >&2; cat "$WORK/again.err" >&2; exit 1; }
	{
		printf '  round %d:' "$r"
		for t in s8 c8 s16 c16 cbad again; do
			printf ' %s %.2fs/%dMB' "$t" "$(tail -n 1 "$WORK/$t.t" | cut -d' ' -f1)" \
				"$(($(tail -n 1 "$WORK/$t.t" | cut -d' ' -f2) / 1024))"
		done
		echo
	} | tee -a "$WORK/rounds"
done

# median COLUMN NAME: of the runs of NAME
median() {
	cut -d' ' -f"$1" "$WORK/$2.t" | sort -g |
		awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
W() { median 1 "$1"; }
M() { echo "$(median 2 "$1") / 1024" | bc; }
CPU() { median 3 "$1"; }

# what batching hosts in one evaluator could save: an evaluator's start and
# flake loading, per host (16 evaluators of a costless host against one)
"$MKREPO" commit "$WORK" --eval-cost '*=0:0' >/dev/null || exit 1
# shellcheck disable=SC2016 # Nix's ${h}
printf '{ h }: [ (builtins.getFlake "git+file://%s").nixosConfigurations.${h}.config.system.build.toplevel.drvPath ]\n' \
	"$R" >"$WORK/one.nix"
start=$(date +%s.%N)
for h in $H16; do nix eval --impure --json --file "$WORK/one.nix" --argstr h "$h" >/dev/null 2>&1; done
sep=$(echo "$(date +%s.%N) - $start" | bc -l)
start=$(date +%s.%N)
nix eval --impure --json --file "$WORK/shared16.nix" >/dev/null 2>&1
one=$(echo "$(date +%s.%N) - $start" | bc -l)
startup=$(echo "($sep - $one) / 15 * 1000" | bc -l)

{
	echo "evaluation benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $RUNS rounds"
	echo "hosts of about 1.3 s CPU and 150 MB kept each (mkrepo --eval-cost '*=1.3:150');"
	echo "constel build (one evaluator per host, --eval-jobs $(nproc), systems prebuilt) against"
	echo "one shared nix eval of the same hosts' drvPaths; wall time and peak RSS of the"
	echo "whole process tree; medians:"
	echo "                          wall     peak    cpu           wall     peak    cpu"
	printf '  8 hosts:   shared %6.2fs %5d MB %5.1fs  constel %6.2fs %5d MB %5.1fs  wall ratio %.2f\n' \
		"$(W s8)" "$(M s8)" "$(CPU s8)" "$(W c8)" "$(M c8)" "$(CPU c8)" \
		"$(echo "$(W c8) / $(W s8)" | bc -l)"
	printf '  16 hosts:  shared %6.2fs %5d MB %5.1fs  constel %6.2fs %5d MB %5.1fs  wall ratio %.2f\n' \
		"$(W s16)" "$(M s16)" "$(CPU s16)" "$(W c16)" "$(M c16)" "$(CPU c16)" \
		"$(echo "$(W c16) / $(W s16)" | bc -l)"
	printf '  16 + a host that throws:                        constel %6.2fs %5d MB %5.1fs  ratio to shared 16 %.2f\n' \
		"$(W cbad)" "$(M cbad)" "$(CPU cbad)" "$(echo "$(W cbad) / $(W s16)" | bc -l)"
	printf '  second build of the same commit:                constel %6.2fs %5d MB %5.1fs  ratio to the first %.2f\n' \
		"$(W again)" "$(M again)" "$(CPU again)" "$(echo "$(W again) / $(W c16)" | bc -l)"
	printf '  constel peak, 16 hosts against 8: %.2f\n' "$(echo "$(M c16) / $(M c8)" | bc -l)"
	printf '  an evaluator'"'"'s start and flake loading (what batching would save): %.0f ms a host\n' \
		"$startup"
	echo "  runs started on a busy machine (no idle second within 3 minutes): $BUSY"
	echo "targets: 16-host wall ratio <= 0.5; with the broken host <= 0.6; constel peak <= 1.0 GB"
	echo "and the same for 16 hosts as for 8; the second build <= 0.2 of the first"
	echo "every round (s: shared, c: constel; wall/peak):"
	cat "$WORK/rounds"
} | tee "$TOP/tests/bench/results/eval.txt"
