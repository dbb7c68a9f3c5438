#!/bin/sh
# Deploy benchmark: 8 simulated hosts, each with a 32 MB closure in 20 store
# paths, deployed by constel and by the baseline script (nix build, then per
# host nix-copy-closure + ssh switch, in parallel) onto fresh fleets in the
# same run; then a no-change redeploy by both. The systems are built once
# before timing, so both measure shipping and activating. RUNS rounds
# (default 3), alternating which tool goes first; medians and ratios.
#   tests/bench/deploy.sh [RUNS]   (root; writes tests/bench/results/deploy.txt)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/fleet/env.sh"
RUNS=${1:-3}
FLEET=$TOP/tests/fleet/fleet
MKREPO=$TOP/tests/fleet/mkrepo
WORK=$(mktemp -d /tmp/constel-bench.XXXXXX)
trap 'for d in "$WORK"/*/; do "$FLEET" down "$d" >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT INT TERM

INV=$WORK/bench.yaml
{
	echo "defaults: { parallel: 8 }"
	echo "hosts:"
	for i in 1 2 3 4 5 6 7 8; do
		echo "  h$i:"
		echo "    services: { svc$i: $((8000 + i)) }"

	done
} >"$INV"
PAYLOAD=
for i in 1 2 3 4 5 6 7 8; do PAYLOAD="$PAYLOAD --payload h$i=32:20"; done

now() { date +%s.%N; }
# fresh fleet in $WORK/NAME with the bench repo; prints nothing
fresh() {
	mkdir -p "$WORK/$1"
	"$FLEET" up "$WORK/$1" "$INV" >/dev/null 2>&1 || { echo "fleet up failed" >&2; exit 1; }
	"$MKREPO" "$WORK/$1" "$INV" $PAYLOAD >/dev/null || { echo "mkrepo failed" >&2; exit 1; }
}
constel_deploy() {
	"$TOP/constel" -i "$WORK/$1/repo/constellation.yaml" --ssh-config "$WORK/$1/ssh_config" \
		deploy --log-dir "$WORK/$1/logs" >"$WORK/$1/constel.out" 2>&1
}
baseline_deploy() {
	"$TOP/tests/bench/baseline-deploy" "$WORK/$1" >"$WORK/$1/baseline.out" 2>&1
}
timed() { # VAR CMD...: seconds into VAR, fails the bench if CMD fails
	_v=$1
	shift
	_s=$(now)
	"$@" || { echo "bench: '$*' failed" >&2; tail -20 "$WORK"/*/constel.out "$WORK"/*/baseline.out >&2; exit 1; }
	eval "$_v=\$(echo \"\$(now) - \$_s\" | bc -l)"
}

echo "building the systems once (8 x 32 MB in 20 paths)..."
fresh warm
"$MKREPO" path "$WORK/warm" h1 h2 h3 h4 h5 h6 h7 h8 >/dev/null || exit 1
"$FLEET" down "$WORK/warm" >/dev/null 2>&1

C_FRESH= B_FRESH= C_NOOP= B_NOOP=
for r in $(seq 1 "$RUNS"); do
	fresh "c$r"
	fresh "b$r"
	if [ $((r % 2)) = 1 ]; then
		timed cf constel_deploy "c$r"
		timed bf baseline_deploy "b$r"
	else
		timed bf baseline_deploy "b$r"
		timed cf constel_deploy "c$r"
	fi
	timed cn constel_deploy "c$r"
	timed bn baseline_deploy "b$r"
	grep -q 'unchanged' "$WORK/c$r/constel.out" || { echo "constel redeploy was not a no-op" >&2; exit 1; }
	printf 'run %d: fresh constel %.2fs baseline %.2fs; no-change constel %.2fs baseline %.2fs\n' \
		"$r" "$cf" "$bf" "$cn" "$bn"
	C_FRESH="$C_FRESH $cf" B_FRESH="$B_FRESH $bf" C_NOOP="$C_NOOP $cn" B_NOOP="$B_NOOP $bn"
	"$FLEET" down "$WORK/c$r" >/dev/null 2>&1
	"$FLEET" down "$WORK/b$r" >/dev/null 2>&1
	rm -rf "$WORK/c$r" "$WORK/b$r"
done

median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cf=$(median $C_FRESH) bf=$(median $B_FRESH) cn=$(median $C_NOOP) bn=$(median $B_NOOP)
{
	echo "deploy benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $RUNS runs"
	echo "8 hosts, 32 MB closure in 20 paths each, systems prebuilt; medians:"
	printf '  fresh deploy:     constel %.2fs  baseline %.2fs  ratio constel/baseline %.2f\n' \
		"$cf" "$bf" "$(echo "$cf / $bf" | bc -l)"
	printf '  no-change deploy: constel %.2fs  baseline %.2fs  ratio constel/baseline %.2f\n' \
		"$cn" "$bn" "$(echo "$cn / $bn" | bc -l)"
	echo "targets: fresh ratio <= 1.0; no-change ratio <= 0.5"
} | tee "$TOP/tests/bench/results/deploy.txt"
