# `make demo` checks what it shows: it passes with the real constel, and
# fails, naming the step, when constel misbehaves at any of its three
# deploys. The misbehaving constel is the real one behind a wrapper that
# changes its answer of the Nth deploy (its exit status or its JSON report).
. "$(dirname "$0")/lib.sh"
need_root_and_netns
T=$(mktemp -d /tmp/constel-test-demo.XXXXXX)
trap 'rm -rf "$T"' EXIT

cat >"$T/lying-constel" <<EOF
#!/bin/sh
# LIE="N rc=X" or LIE="N sed-expression": changes the Nth deploy's answer.
case " \$* " in *" deploy "*) ;; *) exec "$CONSTEL" "\$@" ;; esac
n=\$(( \$(cat "$T/count" 2>/dev/null || echo 0) + 1 ))
echo "\$n" >"$T/count"
"$CONSTEL" "\$@" >"$T/out"
rc=\$?
set -- \$LIE
if [ "\$1" = "\$n" ]; then
	case \$2 in
	rc=*) rc=\${2#rc=}; cat "$T/out" ;;
	*) sed "\$2" "$T/out" ;;
	esac
else
	cat "$T/out"
fi
exit \$rc
EOF
chmod +x "$T/lying-constel"

note "the demo passes with the real constel"
sh "$TOP/tests/demo.sh" >"$T/good.log" 2>&1 || { tail -30 "$T/good.log"; fail "demo failed"; }
grep -q 'every step did what it shows' "$T/good.log" || fail "no closing line"

# lie NAME "LIE" STEP: the demo must exit 1 and name STEP
lie() {
	rm -f "$T/count"
	LIE=$2 CONSTEL="$T/lying-constel" sh "$TOP/tests/demo.sh" >"$T/$1.log" 2>&1
	rc=$?
	[ "$rc" = 1 ] || { tail -20 "$T/$1.log"; fail "$1: demo exited $rc, expected 1"; }
	grep -q "demo failed at \"$3\"" "$T/$1.log" ||
		{ tail -20 "$T/$1.log"; fail "$1: the demo did not name the step '$3'"; }
	! grep -q 'every step did what it shows' "$T/$1.log" || fail "$1: demo went on"
	echo "$1: $(grep 'demo failed at' "$T/$1.log")"
}

note "a deploy that should succeed exits 1"
lie first-fails "1 rc=1" "constel deploy"
note "the redeploy is not all unchanged"
lie redeploy-changes '2 0,/"unchanged"/s//"deployed"/' "constel deploy again"
note "the failing change does not end rolled back"
lie not-rolled-back '3 s/"rolled-back"/"failed"/' "a failing change"
note "its dependents were not skipped"
lie not-skipped '3 0,/"skipped"/s//"deployed"/' "a failing change"
