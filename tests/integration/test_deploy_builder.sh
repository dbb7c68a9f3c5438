# Builders through constel's SSH (deploy/build.c builder_line): a
# `builders:` entry naming a host of the inventory is reached as constel
# reaches it, with only --ssh-config given (Nix's ssh gets `-F CONFIG`);
# an architecture that would be built here under emulation while a
# builder is declared for it is refused unless --allow-emulation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns
need_aarch64
D0=$(mktemp -d /tmp/constel-builder.XXXXXX) || fail "mktemp"
INV=$D0/inv.yaml
cat >"$INV" <<'Y'
builders: { aarch64-linux: gamma }
hosts:
  alpha: { services: { auth: 9091 } }
  gamma: { arch: aarch64-linux, services: { gatus: 8090 } }
  delta: { arch: aarch64-linux, services: { web: 8080 } }
Y
fleet_up "$INV"
# a salt of its own: nothing of these systems is in this machine's store yet
fleet_repo --salt "test-builder-$$-$(date +%s)"
R=$FLEET_DIR/r
LOGS=$FLEET_DIR/logs

note "delta (aarch64) is built on gamma, reached through the ssh config alone"
cj "$R.1" delta
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.1")"
P=$(jq_py "$R.1" 'hosts["delta"]["path"]')
fleet_exec gamma nix-store --check-validity "$P" || fail "gamma's store lacks delta's system $P"
grep -q "NIX_SSHOPTS=-F $FLEET_DIR/ssh_config .*ssh://gamma aarch64-linux" "$LOGS/build.log" ||
	fail "the build log does not show the builder: $(cat "$LOGS/build.log")"
grep -q "on 'ssh://gamma'" "$LOGS/build.log" || fail "no remote build in the log: $(cat "$LOGS/build.log")"

note "--build-on local would emulate aarch64 while gamma builds it natively: refused"
fleet_commit --only delta
C deploy delta --build-on local --log-dir "$LOGS" >"$R.2" 2>&1 && fail "an emulated build was not refused"
grep -q "would be built here under emulation, while builders: names 'gamma'" "$R.2" ||
	fail "the refusal: $(cat "$R.2")"
grep -q "allow-emulation" "$R.2" || fail "the refusal names no way out: $(cat "$R.2")"

note "with --allow-emulation it is built here"
cj "$R.3" delta --build-on local --allow-emulation
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.3")"
rm -rf "$D0"
echo ok
