#!/bin/sh
# Provenance of a deploy on the simulated fleet: `--rev REF` (tag, short id)
# builds that commit exactly, from a flake (git+file://...?rev=) and from a
# plain `file:` (the commit's tree exported); each host's result is a line
# of the git note of the deployed commit (refs/notes/constel), none lost
# when four hosts finish together; the record on each host names the
# revision; a dirty working tree (tracked files only) is refused, allowed
# with --allow-dirty and then recorded dirty; `constel log` reads the notes.
set -u
. "$(dirname "$0")/lib.sh"
need_root_and_netns

HOSTS="alpha beta delta omega"
INV=$(mktemp /tmp/constel-prov.XXXXXX) || fail "mktemp"
printf 'hosts:\n  alpha: {}\n  beta: {}\n  delta: {}\n  omega: {}\n' >"$INV"
fleet_up "$INV"
D=$FLEET_DIR
R=$D/repo
fleet_repo
rm -f "$INV"

# record HOST FIELD: a field of the host's /var/lib/constel/deployment.json
record() {
	fleet_ssh "$1" cat /var/lib/constel/deployment.json |
		/usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("null" if v is None else str(v).lower() if isinstance(v,bool) else v)' "$2"
}

# notes REV: the note of REV, one JSON object per line and host event
notes() {
	git -C "$R" notes --ref constel show "$1" 2>/dev/null
}
# note_count REV HOST RESULT GEN PATH [dirty]: how many lines of REV's note say that
note_count() {
	notes "$1" | /usr/bin/python3 -c '
import json, re, sys
host, result, gen, path, dirty = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], len(sys.argv) > 5
n = 0
for line in sys.stdin:
    e = json.loads(line)
    assert re.match(r"^20[0-9-]*T[0-9:]*Z$", e["time"]), e
    n += (e["host"] == host and e["result"] == result and e["generation"] == gen and
          (path == "*" or e["path"] == path) and e["dirty"] == dirty)
print(n)' "$2" "$3" "$4" "$5" ${6:+dirty}
}

A=$(git -C "$R" rev-parse HEAD)
git -C "$R" tag v1 "$A"
for h in $HOSTS; do
	eval "A_$h=\$(fleet_path $h)"
done
fleet_commit
B=$(git -C "$R" rev-parse HEAD)
for h in $HOSTS; do
	eval "B_$h=\$(fleet_path $h)"
done
[ "$A_alpha" != "$B_alpha" ] || fail "commit B did not change alpha"

note "deploy --rev v1 (a tag of A) while HEAD is B: every host runs A's systems exactly"
C deploy --rev v1 >"$D/d1.log" 2>&1 || { cat "$D/d1.log"; fail "deploy --rev v1"; }
for h in $HOSTS; do
	eval "want=\$A_$h"
	[ "$(current $h)" = "$want" ] || fail "$h runs $(current $h), want A's $want"
	[ "$(record $h revision)" = "$A" ] || fail "$h: record revision $(record $h revision), want $A"
	[ "$(record $h dirty)" = false ] || fail "$h: record says dirty"
	[ "$(record $h path)" = "$want" ] || fail "$h: record path"
done

note "four hosts finishing together: four lines in A's note"
notes "$A"
[ "$(notes "$A" | wc -l)" = 4 ] || fail "note of A has $(notes "$A" | wc -l) lines, want 4"
for h in $HOSTS; do
	eval "want=\$A_$h"
	[ "$(note_count "$A" $h deployed 1 "$want")" = 1 ] || fail "no note line for $h: $(notes "$A")"
done
[ -z "$(notes "$B")" ] || fail "B has a note though it was not deployed"

note "an untracked file does not make the tree dirty: deploy HEAD (B)"
echo scratch >"$R/scratch.txt"
C deploy >"$D/d2.log" 2>&1 || { cat "$D/d2.log"; fail "deploy with an untracked file"; }
for h in $HOSTS; do
	eval "want=\$B_$h"
	[ "$(current $h)" = "$want" ] || fail "$h runs $(current $h), want B's $want"
	[ "$(record $h revision)" = "$B" ] || fail "$h: record revision after deploying B"
done
n=0
for h in $HOSTS; do n=$((n + $(note_count "$B" $h deployed 2 '*'))); done
[ "$n" = 4 ] || fail "note of B: $(notes "$B")"

note "file: inventory, --rev by short id: the commit's tree is exported and built"
{
	printf 'defaults:\n  file: ./fleet.nix\n'
	cat "$R/constellation.yaml"
} >"$R/file.yaml"
git -C "$R" add file.yaml && git -C "$R" commit -q -m "file inventory" || fail "commit file.yaml"
C=$(git -C "$R" rev-parse HEAD)
SHORT_A=$(echo "$A" | cut -c1-9)
"$CONSTEL" -i "$R/file.yaml" --ssh-config "$D/ssh_config" deploy --rev "$SHORT_A" alpha beta \
	>"$D/d3.log" 2>&1 || { cat "$D/d3.log"; fail "deploy --rev from a file: inventory"; }
[ "$(current alpha)" = "$A_alpha" ] || fail "file: alpha runs $(current alpha), want $A_alpha"
[ "$(current beta)" = "$A_beta" ] || fail "file: beta runs $(current beta), want $A_beta"
[ "$(record alpha revision)" = "$A" ] || fail "file: record revision"
[ "$(notes "$A" | wc -l)" = 6 ] || fail "note of A after the file deploy: $(notes "$A")"
ls -d "${TMPDIR:-/tmp}"/constel-rev.* >/dev/null 2>&1 && fail "an exported tree was left behind"

note "a dirty tracked file is refused, with the list, before anything is built"
/usr/bin/python3 - "$R/fleet.json" <<'EOF'
import json, sys
p = sys.argv[1]
fl = json.load(open(p))
fl["hosts"]["alpha"]["generation"] += 10
json.dump(fl, open(p, "w"), indent=2, sort_keys=True)
EOF
before=$(fleet_ssh alpha wc -l /var/lib/constel/history.jsonl)
C deploy alpha >"$D/d4.log" 2>&1
rc=$?
cat "$D/d4.log"
[ "$rc" = 2 ] || fail "dirty deploy exited $rc, want 2"
grep -q "uncommitted changes" "$D/d4.log" || fail "no reason given"
grep -q "^  fleet.json$" "$D/d4.log" || fail "changed file not listed"
grep -q "scratch.txt" "$D/d4.log" && fail "an untracked file was listed"
[ "$(fleet_ssh alpha wc -l /var/lib/constel/history.jsonl)" = "$before" ] || fail "alpha was touched"
[ "$(current alpha)" = "$A_alpha" ] || fail "alpha changed by a refused deploy"

note "--allow-dirty deploys the working tree and records it dirty"
C deploy --allow-dirty alpha >"$D/d5.log" 2>&1 || { cat "$D/d5.log"; fail "deploy --allow-dirty"; }
P_DIRTY=$(current alpha)
[ "$P_DIRTY" != "$A_alpha" ] && [ "$P_DIRTY" != "$B_alpha" ] || fail "alpha did not get the dirty system"
[ "$(record alpha dirty)" = true ] || fail "record not dirty"
[ "$(record alpha revision)" = "$C" ] || fail "dirty record revision $(record alpha revision), want HEAD $C"
[ "$(note_count "$C" alpha deployed 4 "$P_DIRTY" dirty)" = 1 ] || fail "note of C: $(notes "$C")"

note "--rev ignores the dirty working tree: it builds the commit"
C deploy --rev "$B" alpha >"$D/d6.log" 2>&1 || { cat "$D/d6.log"; fail "deploy --rev B in a dirty tree"; }
[ "$(current alpha)" = "$B_alpha" ] || fail "alpha runs $(current alpha), want B's $B_alpha"
[ "$(record alpha dirty)" = false ] || fail "--rev record says dirty"

note "an unknown --rev is bad usage"
C deploy --rev no-such-ref >"$D/d7.log" 2>&1
[ $? = 2 ] || fail "--rev no-such-ref did not exit 2"
grep -q "no-such-ref" "$D/d7.log" || fail "unknown rev not named: $(cat "$D/d7.log")"
git -C "$R" checkout -q fleet.json

note "constel log: newest first, per host, --json"
C log >"$D/log.txt" 2>&1 || fail "log exited $?"
cat "$D/log.txt"
# 4 (--rev v1) + 4 (HEAD) + 2 (file:, --rev A) + 1 (dirty) + 1 (--rev B)
[ "$(grep -c ' deployed ' "$D/log.txt")" = 12 ] || fail "log has $(grep -c ' deployed ' "$D/log.txt") deployed lines, want 12"
head -n 2 "$D/log.txt" | tail -n 1 | grep -q "^20[0-9T:-]*Z  alpha  deployed  *5  $(echo "$B" | cut -c1-8) " ||
	fail "the newest event is not first"
C log --json alpha >"$D/log.json" || fail "log --json alpha"
/usr/bin/python3 - "$D/log.json" "$A" "$B" "$C" <<'EOF' || fail "log --json alpha: $(cat "$D/log.json")"
import json, sys
ev = json.load(open(sys.argv[1]))
A, B, C = sys.argv[2:5]
assert [e["host"] for e in ev] == ["alpha"] * 5, ev
assert [e["revision"] for e in ev] == [B, C, A, B, A], [e["revision"] for e in ev]
assert [e["generation"] for e in ev] == [5, 4, 3, 2, 1], ev
assert ev[1]["dirty"] is True and ev[0]["dirty"] is False
times = [e["time"] for e in ev]
assert times == sorted(times, reverse=True), times
for e in ev:
    assert set(e) == {"time", "host", "result", "generation", "revision", "path", "dirty"}, e
    assert e["result"] == "deployed" and e["path"].startswith("/nix/store/")
EOF
exit 0
