#!/bin/sh
# Evaluation (deploy/eval.h), with `constel build` on a generated repository
# (no fleet: build evaluates and builds on this machine). Evaluations are
# counted in the run's build.log, where Nix's stderr goes: every evaluation
# of a system prints `trace: fleet: evaluating HOST genN`.
#   - a host that does not evaluate fails alone, with Nix's message, and no
#     other host is evaluated again;
#   - an unchanged clean commit is not evaluated again; a new commit, a
#     dirty tree or --no-eval-cache is; a cached derivation gone from the
#     store is evaluated again; a clean tree is evaluated as its commit;
#     status caches HEAD's evaluation in the same cache;
#   - --eval-max-memory fails the host whose evaluator passes it, and only
#     it: the hosts after it get evaluators of their own;
#   - a flake with an input its flake.lock does not lock is never cached;
#     once locked, it is.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (builds in the machine's Nix store)"
command -v nix >/dev/null 2>&1 || fail "needs nix-bin (nix)"

D=$(mktemp -d /tmp/constel-eval.XXXXXX) || fail "mktemp"
trap 'rm -rf "$D"' EXIT
# a cache and logs of this test's own
XDG_CACHE_HOME=$D/cache
XDG_STATE_HOME=$D/state
export XDG_CACHE_HOME XDG_STATE_HOME
cat >"$D/inv.yaml" <<'EOF'
hosts:
  a: { address: 127.0.0.1 }
  b: { address: 127.0.0.1 }
  c: { address: 127.0.0.1 }
  bad: { address: 127.0.0.1 }
  big: { address: 127.0.0.1 }
EOF
# small hosts: 0.1 s and 20 MB (about 180 MB of evaluator); big keeps 600 MB
"$MKREPO" "$D" "$D/inv.yaml" --salt "test-eval-$$" --eval-cost '*=0.1:20' \
	--eval-cost big=0:600 >/dev/null || fail "mkrepo"
R=$D/repo
"$MKREPO" commit "$D" --only bad bad=evalfail >/dev/null || fail "mkrepo commit"

run=0
# build ARGS...: constel build into $D/rN (log: $L, stdout $L.out, stderr $L.err), exit status in $rc
build() {
	run=$((run + 1))
	L=$D/r$run/build.log
	"$CONSTEL" -i "$R/constellation.yaml" build --log-dir "$D/r$run" "$@" \
		>"$D/r$run.out" 2>"$D/r$run.err"
	rc=$?
	[ -f "$L" ] || { cat "$D/r$run.err"; fail "run $run wrote no build.log"; }
}
# evaluated HOST: how many times run $run evaluated HOST
evaluated() { grep -c "^trace: fleet: evaluating $1 gen" "$L"; }
# expect_evals "a b" "c": run $run evaluated each of $1 once, none of $2
expect_evals() {
	for h in $1; do
		[ "$(evaluated "$h")" = 1 ] || { cat "$L"; fail "run $run evaluated $h $(evaluated "$h") times, want once"; }
	done
	for h in $2; do
		[ "$(evaluated "$h")" = 0 ] || { cat "$L"; fail "run $run evaluated $h, want it from the cache"; }
	done
}
expect_rc() {
	[ "$rc" = "$1" ] || { cat "$D/r$run.err"; fail "run $run exited $rc, want $1"; }
}

note "a host that throws fails alone, with nix's message; nothing is evaluated twice"
build --json
expect_rc 1
expect_evals "a b c bad big" ""
[ "$(grep -c '^trace: fleet: evaluating' "$L")" = 5 ] || fail "run 1 evaluated more than 5 times: $(cat "$L")"
/usr/bin/python3 - "$D/r$run.out" <<'EOF' || fail "build --json: $(cat "$D/r$run.out")"
import json, sys
d = json.load(open(sys.argv[1]))
hosts = {h["name"]: h for h in d["hosts"]}
assert d["result"] == "failed", d
for n in ("a", "b", "c", "big"):
    assert hosts[n]["error"] is None and hosts[n]["path"].endswith("-nixos-system-%s-gen1" % n), hosts[n]
err = hosts["bad"]["error"]
assert hosts["bad"]["path"] is None, hosts["bad"]
assert err.startswith("evaluation failed: ") and "evalfail knob: bad does not evaluate" in err, err
EOF
grep -q "evaluated 5 hosts in .*: 0 from the cache, 1 failed" "$D/r$run.err" ||
	fail "no evaluation summary: $(cat "$D/r$run.err")"

note "the same clean commit: only the failed host is evaluated again"
build
expect_rc 1
expect_evals "bad" "a b c big"
grep -q "nixosConfigurations.a.config.system.build.toplevel: from the evaluation cache" "$L" ||
	fail "the log does not say a came from the cache: $(cat "$L")"
grep -q "evaluated 5 hosts in .*: 4 from the cache, 1 failed" "$D/r$run.err" ||
	fail "summary: $(cat "$D/r$run.err")"
# the cache is private, one entry per cached host
[ "$(stat -c %a "$XDG_CACHE_HOME/constel/eval")" = 700 ] || fail "the cache folder is not 0700"
[ "$(find "$XDG_CACHE_HOME/constel/eval" -name '*.json' | wc -l)" = 4 ] ||
	fail "cache entries: $(ls -la "$XDG_CACHE_HOME/constel/eval")"
[ -z "$(find "$XDG_CACHE_HOME/constel/eval" -type f ! -perm 600)" ] || fail "a cache entry is not 0600"

note "--no-eval-cache evaluates everything"
build --no-eval-cache a b
expect_rc 0
expect_evals "a b" "c bad big"

note "a new commit is evaluated again, every host"
"$MKREPO" commit "$D" --only a >/dev/null || fail "mkrepo commit --only a"
build a b c
expect_rc 0
expect_evals "a b c" ""
grep -q '^trace: fleet: evaluating a gen2' "$L" || fail "a's new generation was not evaluated"
build a b c
expect_evals "" "a b c"

note "a dirty tree is evaluated again, and not cached"
echo "# changed" >>"$R/fleet.nix"
build a b
expect_rc 0
expect_evals "a b" ""
build a b
expect_evals "a b" ""
git -C "$R" checkout -q fleet.nix || fail "git checkout"
build a b
expect_evals "" "a b"

note "a cached derivation gone from the store is evaluated again"
DRV=$(sed -n 's/.*nixosConfigurations\.b\.config\.system\.build\.toplevel: from the evaluation cache: //p' "$L")
[ -n "$DRV" ] || fail "no cached derivation of b in the log: $(cat "$L")"
OUT=$(grep '^b ' "$D/r$run.out" | cut -d' ' -f2)
nix-store --delete "$OUT" "$DRV" >/dev/null 2>&1 || fail "could not delete $DRV from the store"
build a b
expect_rc 0
expect_evals "b" "a"
grep -q "the cached $DRV is no longer in the store" "$L" || fail "the log does not say why: $(cat "$L")"

note "--eval-max-memory fails the host past it; the hosts after it evaluate"
build --eval-max-memory 400 --eval-jobs 1 --no-eval-cache a big c
expect_rc 1
grep -q '^big: ' "$D/r$run.out" && fail "big was built past its bound"
grep -q "big: evaluation failed: its evaluator used [0-9]* MB, more than the bound of 400 MB (--eval-max-memory)" \
	"$D/r$run.err" || fail "big's error: $(cat "$D/r$run.err")"
for h in a c; do
	grep -q "^$h /nix/store/" "$D/r$run.out" || fail "$h did not build beside big: $(cat "$D/r$run.out")"
done
# one evaluator per host: the one killed for big is not the one of c
[ "$(grep -c '^\$ nix .* eval --impure' "$L")" = 3 ] || fail "not one evaluator per host: $(cat "$L")"
expect_evals "a c" ""
build --eval-max-memory 800 --no-eval-cache big
expect_rc 0

note "status evaluates HEAD once, then from the cache it shares with build"
"$MKREPO" commit "$D" --only a,b,c >/dev/null || fail "mkrepo commit --only a,b,c"
status() { # N: one status of a b c with -v; it must run N evaluations
	"$CONSTEL" -v -i "$R/constellation.yaml" status --json a b c >"$D/st.json" 2>"$D/st.err"
	_n=$(grep -c 'local\$ nix .* eval --impure' "$D/st.err")
	[ "$_n" = "$1" ] || fail "status evaluated $_n times, want $1: $(cat "$D/st.err")"
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
gens = {h["name"]: h["expected"].rsplit("-", 1)[-1] for h in d["hosts"]}
assert gens == {"a": "gen3", "b": "gen2", "c": "gen2"}, d
' "$D/st.json" || fail "status expects: $(cat "$D/st.json")"
}
status 3
status 0
build a b c
expect_rc 0
expect_evals "" "a b c"
grep -q "git+file://$R?rev=$(git -C "$R" rev-parse HEAD)#nixosConfigurations.a" "$L" ||
	fail "the clean tree was not evaluated as its commit: $(cat "$L")"

note "a flake whose input is not locked is evaluated every time; locked, it is cached"
E=$D/extra
mkdir "$E" && git -C "$E" init -q && echo '{ outputs = { self }: { }; }' >"$E/flake.nix" &&
	git -C "$E" add flake.nix &&
	git -C "$E" -c user.name=t -c user.email=t@localhost commit -q -m extra || fail "input repository"
sed -i "s|outputs = { self }:|inputs.extra.url = \"git+file://$E\";\n  outputs = { self, extra }:|" "$R/flake.nix"
grep -q 'inputs.extra.url' "$R/flake.nix" || fail "could not add an input to $R/flake.nix"
git -C "$R" commit -q -am "an input, unlocked" || fail "git commit"
# Nix 2.8's getFlake refuses a flake whose lock misses an input; a Nix that
# evaluates it anyway must not have it cached
for i in 1 2; do
	build a b
	if [ "$rc" = 0 ]; then
		expect_evals "a b" ""
		grep -q "not cached: its flake does not lock every input" "$L" ||
			fail "no reason in the log: $(cat "$L")"
	else
		grep -q "a: evaluation failed: .*lock file" "$D/r$run.err" ||
			fail "unlocked input: $(cat "$D/r$run.err")"
	fi
done
nix flake lock "$R" 2>"$D/lock.err" || fail "nix flake lock: $(cat "$D/lock.err")"
git -C "$R" add flake.lock && git -C "$R" commit -q -m "locked" || fail "git commit flake.lock"
build a b
expect_rc 0
expect_evals "a b" ""
build a b
expect_evals "" "a b"
echo "all good"
