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
Y
FLEET_CACHE=1 fleet_up "$INV"
# 8 MB of paths of each host's own: what the cache will hold
fleet_repo --payload alpha=8:4 --payload beta=8:4
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
rm -rf "$D0"
echo ok
