# A host marked `local: true` (the machine constel runs on) is activated
# without SSH, through the same watchdog, after every other host.
# The "machine" here is this one inside a private mount namespace: its own
# /run, /var/lib and system profile directory, so nothing real is touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns
command -v unshare >/dev/null || fail "needs unshare (util-linux)"
fleet_up "$SMALL"
INV=$FLEET_DIR/local.yaml
cat >"$INV" <<'Y'
hosts:
  alpha: { services: { auth: 9091 } }
  beta: { services: { restic: 8000 } }
  me:
    local: true
    services: { web: 18087 }
Y
"$MKREPO" "$FLEET_DIR" "$INV" >/dev/null || fail "mkrepo"
ROOT=$FLEET_DIR/me
mkdir -p "$ROOT/run" "$ROOT/varlib/fleet" "$ROOT/profiles"
: >"$FLEET_DIR/order.log"
for h in alpha beta; do
	mkdir -p "$FLEET_DIR/hosts/$h/varlib/fleet"
	ln -sf "$FLEET_DIR/order.log" "$FLEET_DIR/hosts/$h/varlib/fleet/order.log"
done
ln -sf "$FLEET_DIR/order.log" "$ROOT/varlib/fleet/order.log"

# inside: private /run, /var/lib, profiles; the same network (to reach alpha and beta)
unshare --mount --propagation private sh -c '
	mount -t tmpfs tmpfs /run &&
	mount --bind "$1/varlib" /var/lib &&
	mount --bind "$1/profiles" /nix/var/nix/profiles &&
	"$2" -i "$3/repo/constellation.yaml" --ssh-config "$3/ssh_config" --json deploy \
		--log-dir "$3/logs" --confirm-timeout 5 >"$3/r.json" 2>"$3/r.err"
	rc=$?
	# the listeners the local system started belong to this test: stop them
	# (only processes of this mount namespace: the PID may be another'"'"'s by now)
	for p in /run/fleet/listeners/*.pid; do
		[ -e "$p" ] || continue
		l=$(cat "$p")
		[ "$(readlink "/proc/$l/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] && kill "$l"
	done
	exit $rc' sh "$ROOT" "$CONSTEL" "$FLEET_DIR"
rc=$?
cat "$FLEET_DIR/r.err"
[ "$rc" = 0 ] || fail "deploy with a local host exited $rc"
jq_py "$FLEET_DIR/r.json" 'hosts["me"]["status"] == "deployed" and hosts["me"]["sessions"] == 0' ||
	fail "me: $(cat "$FLEET_DIR/r.json")"
[ -e "$ROOT/profiles/system-1-link" ] || fail "the local profile has no generation 1"
[ "$(at 'alpha 1 switch done')" -lt "$(at 'me 1 switch start')" ] &&
	[ "$(at 'beta 1 switch done')" -lt "$(at 'me 1 switch start')" ] ||
	fail "the local host did not go last: $(order)"
[ ! -e /var/lib/fleet/order.log ] || fail "the real /var/lib was touched"
# the same backend table as any host: a health gate and a record, no SSH
grep -q "health: service 'web' (port 18087) passes" "$FLEET_DIR/logs/me.log" ||
	fail "the local host had no health gate: $(cat "$FLEET_DIR/logs/me.log")"
grep -q '"result":"deployed"' "$ROOT/varlib/constel/deployment.json" ||
	fail "the local host has no record"
echo "all good"
