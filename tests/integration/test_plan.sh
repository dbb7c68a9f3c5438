# constel plan and the command line, without any host: waves, JSON shape,
# Graphviz output, selection, cycles, exit status 2 for invalid inventories.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
C=$TOP/constel
EX=$TOP/examples/constellation.yaml
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$C" -i "$EX" plan --json >"$T/a.json" || fail "plan --json exited $?"
# global options after the command are the same
"$C" plan --json -i "$EX" >"$T/b.json" || fail "plan with options after the command"
cmp -s "$T/a.json" "$T/b.json" || fail "option position changed the output"
/usr/bin/python3 - "$T/a.json" <<'PY' || fail "plan JSON: $(cat "$T/a.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"hosts", "waves"}, d.keys()
hosts = {h["name"]: h for h in d["hosts"]}
for h in d["hosts"]:
    assert set(h) == {"name", "arch", "wave", "depends_on", "tags"}, h
assert d["waves"] == [["galactica", "raptor"], ["pegasus"], ["viper"], ["cylon"]], d["waves"]
assert sorted(hosts["cylon"]["depends_on"]) == ["galactica", "pegasus", "viper"]
assert hosts["pegasus"]["arch"] == "aarch64-linux"
# wants (galactica <-> pegasus backups) do not order
assert hosts["galactica"]["depends_on"] == []
PY

"$C" -i "$EX" plan --dot >"$T/g.dot" || fail "plan --dot"
grep -q 'style=dashed' "$T/g.dot" || fail "no dashed wants edge"
dot -Tsvg "$T/g.dot" >"$T/g.svg" || fail "dot cannot render the graph"
# wants edges (between hosts, not the legend's) do not steer the layout
grep '^	"[^ "]*" -> "[^ "]*".*style=dashed' "$T/g.dot" >"$T/wants" || fail "no wants edge between hosts"
[ "$(wc -l <"$T/wants")" -eq 2 ] || fail "wants edges: $(cat "$T/wants")"
grep -v 'constraint=false' "$T/wants" && fail "a wants edge steers the layout"
# each host shows its services and tags; there is a legend
grep -q '"galactica" \[label="galactica\\nx86_64-linux\\njellyfin:8096, restic:8000, grafana:3000\\ngitea:3001, prometheus:9090\\n@tier1 @storage @home"' "$T/g.dot" ||
	fail "galactica's node: $(grep '"galactica" \[' "$T/g.dot")"
grep -q 'dns:53, node-exporter:9100' "$T/g.dot" || fail "raptor's services"
grep -q 'subgraph cluster_legend' "$T/g.dot" || fail "no legend"
grep -q 'label="wants: no order", style=dashed' "$T/g.dot" || fail "legend: wants dashed"
# galactica (wave 0) is drawn above pegasus (wave 1) that uses it (dot's y grows upwards)
dot -Tplain "$T/g.dot" >"$T/g.plain" || fail "dot -Tplain"
y_gal=$(awk '$1 == "node" && $2 == "galactica" { print $4 }' "$T/g.plain")
y_peg=$(awk '$1 == "node" && $2 == "pegasus" { print $4 }' "$T/g.plain")
awk -v a="$y_gal" -v b="$y_peg" 'BEGIN { exit !(a > b) }' ||
	fail "galactica (y=$y_gal) is not above pegasus (y=$y_peg)"

"$C" -i "$EX" plan --json cylon >"$T/c.json" || fail "plan cylon"
grep -q '"waves":\[\["cylon"\]\]' "$T/c.json" || fail "selection: $(cat "$T/c.json")"
"$C" -i "$EX" plan --json --with-deps cylon | grep -q '"galactica"' || fail "--with-deps"
"$C" -i "$EX" plan --json --on '@board' | grep -q '"viper"' || fail "--on @tag"
"$C" -i "$EX" plan nosuchhost 2>"$T/e" && fail "unknown host accepted"
[ $? -eq 2 ] || true
"$C" -i "$EX" plan nosuchhost 2>/dev/null; [ $? -eq 2 ] || fail "unknown host: exit not 2"

cat >"$T/cycle.yaml" <<'Y'
hosts:
  a: { services: { x: 1 }, uses: [y] }
  b: { services: { y: 2 }, uses: [z] }
  c: { services: { z: 3 }, depends_on: [a] }
Y
"$C" -i "$T/cycle.yaml" plan 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "cycle: exit $rc"
grep -q 'dependency cycle: a → b → c → a' "$T/e" || fail "cycle path: $(cat "$T/e")"
grep -q 'c → a: depends_on a at .*cycle.yaml:4:41' "$T/e" || fail "cycle edge: $(cat "$T/e")"

printf 'hosts:\n  a:\n    adress: x\n    services: { p: 70000 }\n' >"$T/bad.yaml"
"$C" -i "$T/bad.yaml" deploy 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "invalid inventory: deploy exited $rc"
grep -q "bad.yaml:3:5: unknown key 'adress'" "$T/e" || fail "$(cat "$T/e")"
grep -q "bad.yaml:4:20:" "$T/e" || fail "second error missing: $(cat "$T/e")"
"$C" frobnicate 2>/dev/null; [ $? -eq 2 ] || fail "unknown command: exit not 2"
"$C" --version | grep -q '^constel ' || fail "--version"
"$C" deploy --help | grep -q 'usage: constel deploy' || fail "deploy --help"
echo "all good"
