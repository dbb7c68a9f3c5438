#!/bin/sh
# constel status on the simulated fleet: after deploying commit A everywhere
# but `fresh`, then commit B (which changes alpha and beta) to alpha only,
# status tells alpha in-sync, beta behind (1 commit), delta in-sync (B does
# not change it), fresh unknown; a host changed by hand is
# changed-by-hand, an unreachable one unreachable; exit 0 only when every
# host is reachable and in-sync. --json has exactly the documented fields.
set -u
. "$(dirname "$0")/lib.sh"
need_root_and_netns

INV=$(mktemp /tmp/constel-status.XXXXXX) || fail "mktemp"
cat >"$INV" <<'EOF'
hosts:
  alpha:
    services: { web: 8080 }
  beta: {}
  delta: {}
  fresh: {}
EOF
fleet_up "$INV"
D=$FLEET_DIR
R=$D/repo
fleet_repo
rm -f "$INV"

# js FILE HOST FIELD: a field of a host in a status --json document ("null" for null)
js() {
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
h = [x for x in d["hosts"] if x["name"] == sys.argv[2]]
if len(h) != 1:
    sys.exit("no host %s in %s" % (sys.argv[2], sys.argv[1]))
v = h[0][sys.argv[3]]
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
' "$@"
}

expect() { # FILE HOST FIELD VALUE
	_v=$(js "$1" "$2" "$3") || fail "reading $1"
	[ "$_v" = "$4" ] || { cat "$1"; fail "$2.$3 is '$_v', want '$4'"; }
}

A=$(git -C "$R" rev-parse HEAD)
A_BETA=$(fleet_path beta)

note "deploy A to alpha, beta, delta"
C deploy alpha beta delta >"$D/deploy-a.log" 2>&1 || { cat "$D/deploy-a.log"; fail "deploy A"; }

note "commit B changes alpha and beta; deploy it to alpha only"
fleet_commit --only alpha,beta
B=$(git -C "$R" rev-parse HEAD)
B_ALPHA=$(fleet_path alpha)
B_BETA=$(fleet_path beta)
P_DELTA=$(fleet_path delta)
[ "$B_BETA" != "$A_BETA" ] || fail "commit B did not change beta"
C deploy alpha >"$D/deploy-b.log" 2>&1 || { cat "$D/deploy-b.log"; fail "deploy B"; }

note "status --json"
start=$(date +%s)
C status --json >"$D/st.json" 2>"$D/st.err"
rc=$?
cat "$D/st.err"
[ "$rc" = 1 ] || { cat "$D/st.json"; fail "status exited $rc, want 1 (beta behind, fresh unknown)"; }
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["hosts"], list(d)
want = {"name", "reachable", "current", "generation", "revision", "expected", "drift",
        "behind", "switched", "locked", "interrupted"}
for h in d["hosts"]:
    assert set(h) == want, sorted(h)
assert [h["name"] for h in d["hosts"]] == ["alpha", "beta", "delta", "fresh"]
' "$D/st.json" || fail "status --json has not the documented shape: $(cat "$D/st.json")"

expect "$D/st.json" alpha drift in-sync
expect "$D/st.json" alpha reachable true
expect "$D/st.json" alpha current "$B_ALPHA"
expect "$D/st.json" alpha expected "$B_ALPHA"
expect "$D/st.json" alpha generation 2
expect "$D/st.json" alpha revision "$B"
expect "$D/st.json" alpha behind 0
case $(js "$D/st.json" alpha switched) in
null | 1970-*) fail "alpha: no switched time: $(js "$D/st.json" alpha switched)" ;;
esac

expect "$D/st.json" beta drift behind
expect "$D/st.json" beta current "$A_BETA"
expect "$D/st.json" beta expected "$B_BETA"
expect "$D/st.json" beta generation 1
expect "$D/st.json" beta revision "$A"
expect "$D/st.json" beta behind 1

# B does not change delta: it runs what HEAD builds, though from an older commit
expect "$D/st.json" delta drift in-sync
expect "$D/st.json" delta current "$P_DELTA"
expect "$D/st.json" delta expected "$P_DELTA"
expect "$D/st.json" delta revision "$A"
expect "$D/st.json" delta behind 1

expect "$D/st.json" fresh drift unknown
expect "$D/st.json" fresh reachable true
expect "$D/st.json" fresh revision null
expect "$D/st.json" fresh generation null
expect "$D/st.json" fresh behind null
[ $(($(date +%s) - start)) -le 20 ] || fail "status of 4 hosts took over 20 s"

note "the table"
C status >"$D/st.txt" 2>/dev/null
cat "$D/st.txt"
grep -q "^beta  *behind  *1  *$(echo "$A" | cut -c1-8)  *1 " "$D/st.txt" || fail "table: beta row"
grep -q "^alpha  *in-sync  *2  *$(echo "$B" | cut -c1-8) " "$D/st.txt" || fail "table: alpha row"
grep -q "^fresh  *unknown " "$D/st.txt" || fail "table: fresh row"

note "selection and --no-eval: the verdict comes from the record's revision"
C status --no-eval --json delta beta >"$D/st2.json" 2>/dev/null
[ $? = 1 ] || fail "status --no-eval exit"
[ "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["hosts"]))' "$D/st2.json")" = 2 ] ||
	fail "selection of 2 hosts: $(cat "$D/st2.json")"
expect "$D/st2.json" delta expected null
expect "$D/st2.json" delta drift behind
expect "$D/st2.json" beta drift behind
C status --no-eval --json alpha >"$D/st3.json" 2>/dev/null || fail "alpha alone is in sync: exit $?"
expect "$D/st3.json" alpha drift in-sync

note "delta changed by hand to a system constel never deployed"
fleet_commit --only delta
P_HAND=$(fleet_path delta)
git -C "$R" reset -q --hard "$B"
nix-store --export $(nix-store -qR "$P_HAND") | fleet_ssh delta nix-store --import >/dev/null ||
	fail "copying $P_HAND to delta"
fleet_ssh delta "nix-env -p /nix/var/nix/profiles/system --set $P_HAND && $P_HAND/bin/switch-to-configuration switch" ||
	fail "switching delta by hand"
C status --json delta >"$D/st4.json" 2>/dev/null
[ $? = 1 ] || fail "status of a hand-changed host exited 0"
expect "$D/st4.json" delta drift changed-by-hand
expect "$D/st4.json" delta current "$P_HAND"
expect "$D/st4.json" delta revision null
expect "$D/st4.json" delta generation 2

note "an unreachable host"
sed "s/HostName $(fleet_addr fresh)\$/HostName 10.231.255.254/" "$D/ssh_config" >"$D/ssh_config.bad"
grep -q 10.231.255.254 "$D/ssh_config.bad" || fail "could not point fresh elsewhere"
"$CONSTEL" -i "$R/constellation.yaml" --ssh-config "$D/ssh_config.bad" status --json --no-eval \
	fresh alpha >"$D/st5.json" 2>"$D/st5.err"
[ $? = 1 ] || fail "status with an unreachable host exited 0"
grep -q "fresh: unreachable" "$D/st5.err" || fail "no reason given: $(cat "$D/st5.err")"
expect "$D/st5.json" fresh drift unreachable
expect "$D/st5.json" fresh reachable false
expect "$D/st5.json" fresh current null
expect "$D/st5.json" alpha drift in-sync

note "deploy HEAD everywhere: status exits 0"
C deploy >"$D/deploy-all.log" 2>&1 || { cat "$D/deploy-all.log"; fail "deploy all"; }
C status --json >"$D/st6.json" 2>"$D/st6.err" || { cat "$D/st6.json" "$D/st6.err"; fail "status after deploying everything exited $?"; }
for h in alpha beta delta fresh; do
	expect "$D/st6.json" $h drift in-sync
done
expect "$D/st6.json" beta revision "$B"
expect "$D/st6.json" beta behind 0

note "bad usage"
C status --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "status --bogus did not exit 2"
C status nosuchhost >/dev/null 2>&1
[ $? = 2 ] || fail "status of an unknown host did not exit 2"
exit 0
