# The inventory as a flake output (-i FLAKE#ATTR): examples/flake, in a
# repository of its own (the project's nix/ and the simulated fleet's
# nixos.nix beside it, as the example imports them), against the same fleet
# written as YAML: the same plan, the same builds, the same deploy; the
# registry, the gateway's generated upstreams, errors with attribute paths
# and Nix positions, and no second evaluation of an unchanged commit.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
# lib.sh's EXIT trap brings the fleet down: keep it
trap 'rm -rf "$T"; _fleet_cleanup' EXIT
R=$T/repo
export XDG_CACHE_HOME=$T/cache
mkdir -p "$R/tests/fleet" "$R/examples"
cp -r "$TOP/flake.nix" "$TOP/nix" "$R/"
cp -r "$TOP/tests/fleet/nix" "$R/tests/fleet/"
cp -r "$TOP/examples/flake" "$R/examples/"
F="$R/examples/flake#constellation"
git -C "$R" init -q && git -C "$R" add -A &&
	git -C "$R" -c user.name=t -c user.email=t@t commit -qm fleet || fail "git"
commit() { git -C "$R" -c user.name=t -c user.email=t@t commit -qam "$1" || fail "git commit"; }
cat >"$R/examples/flake/constellation.yaml" <<'Y'
# examples/flake#constellation, written by hand
defaults: { goal: switch }
hosts:
  galactica:
    arch: x86_64-linux
    tags: [fleet, storage]
    services: { grafana: 3000, jellyfin: 8096, restic: 8000 }
  pegasus:
    arch: x86_64-linux
    tags: [fleet]
    services: { gateway: 8443 }
    uses: [jellyfin, galactica/grafana, dns]
    wants: [restic]
  raptor:
    arch: aarch64-linux
    tags: [fleet]
    services: { dns: 5353 }
Y
git -C "$R" add -A && commit "the same fleet as YAML"
Y=$R/examples/flake/constellation.yaml

note "the same plan as the YAML, evaluated once per commit"
"$CONSTEL" -v -i "$F" plan --json >"$T/flake.json" 2>"$T/flake.err" || fail "plan: $(cat "$T/flake.err")"
"$CONSTEL" -i "$Y" plan --json >"$T/yaml.json" || fail "plan of the YAML"
cmp -s "$T/flake.json" "$T/yaml.json" || fail "plans differ: $(cat "$T/flake.json") / $(cat "$T/yaml.json")"
grep -q 'constellation: evaluated$' "$T/flake.err" || fail "not evaluated: $(cat "$T/flake.err")"
# all but the hosts, then each host by an evaluator of its own
[ "$(grep -c '^\$ nix .* eval ' "$T/flake.err")" = 4 ] || fail "evaluators: $(cat "$T/flake.err")"
for h in galactica pegasus raptor; do
	grep -q "^# $h: evaluated in" "$T/flake.err" || fail "$h: $(cat "$T/flake.err")"
done
"$CONSTEL" -v -i "$F" plan --json >"$T/again.json" 2>"$T/again.err" || fail "plan again"
cmp -s "$T/flake.json" "$T/again.json" || fail "the cached plan differs"
grep -q 'constellation: from the evaluation cache' "$T/again.err" || fail "evaluated again: $(cat "$T/again.err")"
grep -q 'nix.* eval' "$T/again.err" && fail "nix ran for an unchanged commit: $(cat "$T/again.err")"
# the default: .#constellation when there is a flake.nix and no constellation.yaml
(cd "$R/examples/flake" && mv constellation.yaml ../c.yaml && "$CONSTEL" plan --json >"$T/default.json"
	rc=$?; mv ../c.yaml constellation.yaml; exit $rc) || fail "plan without -i"
cmp -s "$T/flake.json" "$T/default.json" || fail "without -i: $(cat "$T/default.json")"
"$CONSTEL" -i "$R/examples/flake" plan --json >"$T/dir.json" || fail "plan -i DIR"
cmp -s "$T/flake.json" "$T/dir.json" || fail "-i DIR: $(cat "$T/dir.json")"

note "the project's flake and nix/: the module parses, lib.inventory restricts to hosts"
for f in "$TOP/flake.nix" "$TOP"/nix/*.nix; do
	nix-instantiate --parse "$f" >/dev/null || fail "$f does not parse"
done
nix eval --json "git+file://$R#lib" --apply 'l: builtins.attrNames l' | grep -qx '\["inventory","registry"\]' ||
	fail "the flake's lib"
nix eval --json "git+file://$R#nixosModules" --apply 'm: builtins.attrNames m' | grep -qx '\["default"\]' ||
	fail "the flake's module"
nix eval --impure --json --expr "let c = import $R/nix { }; fl = builtins.getFlake \"git+file://$R?dir=examples/flake\";
	in builtins.attrNames (c.lib.inventory { inherit (fl) nixosConfigurations; hosts = [ \"raptor\" ]; }).hosts" |
	grep -qx '\["raptor"\]' || fail "lib.inventory hosts"
nix eval --impure --json --expr "(import $R/nix { }).lib.inventory { nixosConfigurations = { }; hosts = [ \"x\" ]; }" \
	2>"$T/e" && fail "lib.inventory of an unknown host"
grep -q 'constel.lib.inventory: hosts names \["x"\], not in nixosConfigurations' "$T/e" || fail "$(cat "$T/e")"

note "the registry of the flake, of the YAML, and constel.lib.registry agree"
"$CONSTEL" -i "$F" registry --json >"$T/reg.flake" || fail "registry"
"$CONSTEL" -i "$Y" registry --json >"$T/reg.yaml" || fail "registry of the YAML"
nix eval --impure --json --expr "(import $R/nix { }).lib.registry
	(builtins.getFlake \"git+file://$R?dir=examples/flake\").nixosConfigurations" >"$T/reg.nix" ||
	fail "lib.registry"
"$CONSTEL" -i "$F" registry --nix >"$T/reg.nixtext" || fail "registry --nix"
nix eval --json -f "$T/reg.nixtext" >"$T/reg.nixjson" || fail "registry --nix is not Nix: $(cat "$T/reg.nixtext")"
/usr/bin/python3 - "$T" <<'PY' || fail "registries differ"
import json, sys
t = sys.argv[1]
a, b, c, d = (json.load(open(t + "/reg." + n)) for n in ("flake", "yaml", "nix", "nixjson"))
assert a == b == c == d, (a, b, c, d)
assert a["galactica"]["jellyfin"] == {"port": 8096, "address": "galactica"}, a
assert set(a) == {"galactica", "pegasus", "raptor"} and set(a["pegasus"]) == {"gateway"}, a
PY

note "the gateway's upstreams list the other hosts' services, from the registry"
P=$(nix build --no-link --json "git+file://$R?dir=examples/flake#nixosConfigurations.pegasus.config.system.build.toplevel" |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["outputs"]["out"])') || fail "build pegasus"
U=$P/etc/gateway/upstreams
for l in "jellyfin.galactica galactica:8096" "grafana.galactica galactica:3000" \
	"restic.galactica galactica:8000" "dns.raptor raptor:5353"; do
	grep -qx "$l" "$U" || fail "upstreams lack '$l': $(cat "$U")"
done
grep -q gateway "$U" && fail "the gateway proxies to itself: $(cat "$U")"

note "the same builds as the YAML"
"$CONSTEL" -i "$F" build >"$T/b.flake" 2>&1 || fail "build: $(cat "$T/b.flake")"
"$CONSTEL" -i "$Y" build >"$T/b.yaml" 2>&1 || fail "build of the YAML: $(cat "$T/b.yaml")"
grep '^  [a-z]*: /nix/store/' "$T/b.flake" >"$T/p.flake"
grep '^  [a-z]*: /nix/store/' "$T/b.yaml" >"$T/p.yaml"
[ "$(wc -l <"$T/p.flake")" = 3 ] && cmp -s "$T/p.flake" "$T/p.yaml" ||
	fail "builds differ: $(cat "$T/b.flake") / $(cat "$T/b.yaml")"
grep -q "pegasus: $P\$" "$T/p.flake" || fail "pegasus: $(cat "$T/p.flake")"
# the command's evaluation options apply to the inventory too
"$CONSTEL" -v -i "$F" build --no-eval-cache --eval-jobs 1 >/dev/null 2>"$T/b.err" || fail "build --no-eval-cache"
grep -q 'constellation: evaluated$' "$T/b.err" || fail "--no-eval-cache read the cache: $(cat "$T/b.err")"
"$CONSTEL" -i "$F" build --no-eval-cache --eval-max-memory 16 >/dev/null 2>"$T/b.err"; rc=$?
[ $rc = 2 ] && grep -q "cannot evaluate the inventory: its evaluator used [0-9]* MB, more than the bound of 16 MB" "$T/b.err" ||
	fail "--eval-max-memory 16: exit $rc, $(cat "$T/b.err")"

note "errors name the attribute path and the Nix file, line and column"
sed -i 's|constel.uses = \[ "jellyfin" "galactica/grafana" "dns" \];|constel.uses = [ "jellyfin" "nfty" ];\n  constel.adress = "x";|' \
	"$R/examples/flake/hosts/pegasus.nix"
sed -i 's|constel.services.dns = 5353;|constel.services.dns = 70000;|' "$R/examples/flake/hosts/raptor.nix"
commit "broken"
"$CONSTEL" -i "$F" plan >/dev/null 2>"$T/e"; rc=$?
[ $rc = 2 ] || fail "a broken inventory: exit $rc"
H=$R/examples/flake/hosts
grep -qx "$H/pegasus.nix:8:3: constellation.hosts.pegasus.adress: unknown key 'adress' in host 'pegasus'; did you mean 'address'?" "$T/e" ||
	fail "unknown key: $(cat "$T/e")"
grep -qx "$H/raptor.nix:6:3: constellation.hosts.raptor.services.dns: port of service 'dns' on host 'raptor' must be a whole number from 1 to 65535, not '70000'" "$T/e" ||
	fail "bad port: $(cat "$T/e")"
grep -qx "$H/pegasus.nix:7:3: constellation.hosts.pegasus.uses\[1\]: uses 'nfty' of host 'pegasus': no host provides a service 'nfty'" "$T/e" ||
	fail "unknown service: $(cat "$T/e")"
grep -qx "constel: 3 problems in '$F'; nothing was done" "$T/e" || fail "count: $(cat "$T/e")"
"$CONSTEL" --json -i "$F" plan >"$T/e.json" 2>/dev/null
/usr/bin/python3 - "$T/e.json" "$H" <<'PY' || fail "JSON: $(cat "$T/e.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "invalid", d
e = [x for x in d["errors"] if x.get("attribute") == "constellation.hosts.pegasus.uses[1]"]
assert e and e[0]["file"] == sys.argv[2] + "/pegasus.nix" and e[0]["line"] == 7, d
PY
# Nix's own error, with its position
printf '{ ... }: { networking.hostName = "raptor"; constel = throw "no constel here"; }\n' >"$H/raptor.nix"
commit "throws"
"$CONSTEL" -i "$F" plan >/dev/null 2>"$T/e"; rc=$?
[ $rc = 2 ] || fail "an inventory that throws: exit $rc"
# the host that throws, alone: the others evaluated
grep -qx "$F: constellation.hosts.raptor: cannot evaluate the inventory: no constel here" "$T/e" ||
	fail "throw: $(cat "$T/e")"
[ "$(wc -l <"$T/e")" = 1 ] || fail "more than the one error: $(cat "$T/e")"
git -C "$R" checkout -q HEAD~2 -- examples && commit "fixed"

note "the same deploy as the YAML, on the simulated fleet"
need_root_and_netns
need_aarch64
fleet_up "$Y"
S=$FLEET_DIR/ssh_config
"$CONSTEL" -i "$F" --ssh-config "$S" --json deploy --log-dir "$T/logs" >"$T/d.flake" 2>"$T/d.err" ||
	fail "deploy: $(cat "$T/d.err")"
/usr/bin/python3 - "$T/d.flake" <<'PY' || fail "deploy: $(cat "$T/d.flake")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "ok" and {h["name"]: h["status"] for h in d["hosts"]} == \
    {"galactica": "deployed", "pegasus": "deployed", "raptor": "deployed"}, d
PY
[ "$(current pegasus)" = "$P" ] || fail "pegasus runs $(current pegasus), not $P"
fleet_exec pegasus cat /run/current-system/etc/gateway/upstreams | grep -qx "dns.raptor raptor:5353" ||
	fail "pegasus's upstreams"
port_open "$(fleet_addr raptor)" 5353 || fail "raptor's dns does not answer"
"$CONSTEL" -i "$Y" --ssh-config "$S" --json deploy --log-dir "$T/logs" >"$T/d.yaml" 2>"$T/d.err" ||
	fail "deploy of the YAML: $(cat "$T/d.err")"
/usr/bin/python3 - "$T/d.yaml" <<'PY' || fail "the YAML deploy changed something: $(cat "$T/d.yaml")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "ok" and all(h["status"] == "unchanged" for h in d["hosts"]), d
PY
echo "all good"
