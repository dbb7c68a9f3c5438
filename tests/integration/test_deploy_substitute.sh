# Substitutes on the destination (transport/copy.c): a host that lacks
# paths first fetches what it can from its own substituters, here the
# fleet's binary cache served over HTTP on the bridge (`fleet cache`,
# FLEET_CACHE=1); only the rest is pushed. --no-substitute pushes it all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns
D0=$(mktemp -d /tmp/constel-subst.XXXXXX) || fail "mktemp"
INV=$D0/inv.yaml
cat >"$INV" <<'Y'
hosts:
  alpha: { services: { auth: 9091 } }
  beta: { services: { restic: 8000 } }
  gamma: { services: { web: 8080 } }
Y
FLEET_CACHE=1 fleet_up "$INV"
# 8 MB of paths of each host's own: what the cache will hold
fleet_repo --payload alpha=8:4 --payload beta=8:4 --payload gamma=8:4
R=$FLEET_DIR/r
LOGS=$FLEET_DIR/logs
CACHE=$D0/cache
"$FLEET" cache "$FLEET_DIR" "$CACHE" >/dev/null || fail "fleet cache"
# the payloads go to the cache, signed with the key the hosts trust
for h in alpha beta; do
	P=$(fleet_path $h)
	nix-store -qR "$P" | grep -- "-payload-$h-" >"$D0/$h.payload"
	[ -s "$D0/$h.payload" ] || fail "$h has no payload paths"
	xargs nix store sign --key-file "$FLEET_DIR/signing.key" <"$D0/$h.payload" || fail "sign"
	xargs nix copy --to "file://$CACHE" <"$D0/$h.payload" || fail "nix copy to the cache"
done
[ -f "$CACHE/nix-cache-info" ] || fail "no binary cache in $CACHE"

note "alpha fetches its payload from the cache: constel pushes only the rest"
cj "$R.1" alpha
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.1")"
bytes=$(jq_py "$R.1" 'hosts["alpha"]["bytes"]')
[ "$bytes" -lt 2000000 ] || fail "alpha: $bytes bytes pushed, the payload (8 MB) came from constel"
grep -q "fetched 4 paths from its own substituters" "$LOGS/alpha.log" ||
	fail "alpha's log: $(cat "$LOGS/alpha.log")"
grep -q '"GET /nar/' "$FLEET_DIR/cache.log" || fail "the cache served no NAR: $(cat "$FLEET_DIR/cache.log")"

note "--no-substitute: beta gets everything from constel"
cj "$R.2" beta --no-substitute
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.2")"
bytes=$(jq_py "$R.2" 'hosts["beta"]["bytes"]')
[ "$bytes" -gt 8000000 ] || fail "beta: only $bytes bytes pushed with --no-substitute"
! grep -q "substituters" "$LOGS/beta.log" || fail "beta substituted: $(cat "$LOGS/beta.log")"

note "cache: constel pushes gamma's closure to the fleet's cache once; gamma fetches it from there"
# the cache's own directory, as a LAN cache: constel writes it, the hosts read it over HTTP
sed -i "1i defaults: { cache: 'file://$CACHE', signing_key: $FLEET_DIR/signing.key }" \
	"$FLEET_DIR/repo/constellation.yaml"
fleet_commit --only gamma
cj "$R.3" gamma
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.3")"
grep -q "gamma *pushed to the cache file://$CACHE" "$R.3.err" || fail "no push: $(cat "$R.3.err")"
bytes=$(jq_py "$R.3" 'hosts["gamma"]["bytes"]')
[ "$bytes" -lt 2000000 ] || fail "gamma: $bytes bytes pushed to it, its payload did not come from the cache"
grep -q "fetched [0-9]* paths from its own substituters" "$LOGS/gamma.log" || fail "gamma's log: $(cat "$LOGS/gamma.log")"
ls -l --time-style=+%s.%N "$CACHE"/*.narinfo >"$D0/narinfo.1"

note "cache: what the cache has is not pushed again"
fleet_commit --only gamma
cj "$R.4" gamma
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.4")"
ls -l --time-style=+%s.%N "$CACHE"/*.narinfo >"$D0/narinfo.2"
# every narinfo of before is untouched; only the new generation's paths were added
while read -r line; do
	grep -qxF -- "$line" "$D0/narinfo.2" || fail "a path already in the cache was pushed again: $line"
done <"$D0/narinfo.1"
[ "$(wc -l <"$D0/narinfo.2")" -gt "$(wc -l <"$D0/narinfo.1")" ] || fail "the new generation was not pushed"
rm -rf "$D0"
echo ok
