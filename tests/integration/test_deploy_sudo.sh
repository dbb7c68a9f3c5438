# Deploying as a non-root login user (docs/become.md): the simulated hosts
# run their own nix-daemon (root owns the store), have the account cdeploy
# with the fleet's key, and the sudoers rule `constel sudoers cdeploy`
# prints: constel-host, and nothing else, as root.
#   alpha: cdeploy is not a trusted user of its daemon: unsigned paths are
#          refused before anything is activated; signed ones are taken
#   beta:  cdeploy is trusted (trusted-users): unsigned paths are taken
#   gamma: cdeploy's sudo wants a password: the host fails at once, the
#          others go on
# Then, as cdeploy: the health gate's restore, rollback, status, exec.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
need_root_and_netns
command -v sudo >/dev/null || fail "needs sudo (Debian's package)"
D0=$(mktemp -d /tmp/constel-sudo.XXXXXX) || fail "mktemp"
INV=$D0/inv.yaml
cat >"$INV" <<'Y'
defaults:
  user: cdeploy
hosts:
  alpha: { services: { auth: 9091 } }
  beta: { services: { restic: 8000 } }
  gamma: { services: { gatus: 8090 } }
Y
FLEET_TRUSTED=beta FLEET_DEPLOY_PASSWORD=hunter2-sudo fleet_up "$INV"
fleet_repo
"$CONSTEL" sudoers cdeploy >"$D0/rule" || fail "constel sudoers"
grep -q '^cdeploy ALL=(root) NOPASSWD: sha256:[0-9a-f]\{64\} /nix/store/[a-z0-9]*-constel-host-[^ ]*/bin/constel-host$' "$D0/rule" &&
	[ "$(grep -vc '^#\|^Defaults!/nix/store/.*/bin/constel-host fdexec=never$' "$D0/rule")" = 1 ] ||
	fail "the rule: $(cat "$D0/rule")"
for h in alpha beta gamma; do
	f=$FLEET_DIR/hosts/$h/sudoers.d/constel
	# gamma: the same rule, but sudo asks a password
	if [ $h = gamma ]; then sed 's/NOPASSWD: //' "$D0/rule" >"$f"; else cp "$D0/rule" "$f"; fi
	chmod 0440 "$f"
done
R=$FLEET_DIR/r
LOGS=$FLEET_DIR/logs
# who ran the watchdog: the holder file is written by start.sh, as root
holder_uid() { fleet_exec "$1" stat -c %u /run/constel/holder; }

note "no signing key: alpha refuses the unsigned closure before activating; beta (trusted) takes it; gamma's sudo wants a password"
cj "$R.1"
[ "$rc" = 1 ] || fail "exit $rc"
jq_py "$R.1" 'hosts["alpha"]["status"] == "failed" and "trusted-public-keys" in hosts["alpha"]["error"] and "trusted-users" in hosts["alpha"]["error"]' ||
	fail "alpha: $(cat "$R.1")"
jq_py "$R.1" 'hosts["beta"]["status"] == "deployed"' || fail "beta: $(cat "$R.1")"
jq_py "$R.1" 'hosts["gamma"]["status"] == "failed" and "a password is required" in hosts["gamma"]["error"]' ||
	fail "gamma: $(cat "$R.1")"
[ "$(gens alpha)" = "" ] || fail "alpha was activated: $(gens alpha)"
[ "$(holder_uid beta)" = 0 ] || fail "beta's watchdog did not run as root"
grep -q "^cdeploy " "$FLEET_DIR/hosts/beta/sshd.log" 2>/dev/null ||
	grep -q "Accepted publickey for cdeploy" "$FLEET_DIR/hosts/beta/sshd.log" || fail "no login as cdeploy on beta"
! grep -q "Accepted publickey for root" "$FLEET_DIR/hosts/beta/sshd.log" || fail "constel logged in as root"

note "with signing_key: alpha takes the signed closure"
sed -i "s|^  user: cdeploy|  user: cdeploy\n  signing_key: $FLEET_DIR/signing.key|" "$FLEET_DIR/repo/constellation.yaml"
fleet_commit --only alpha
cj "$R.2" alpha beta
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.2")"
jq_py "$R.2" 'hosts["alpha"]["status"] == "deployed"' || fail "alpha: $(cat "$R.2")"
fleet_exec alpha nix path-info --sigs "$(current alpha)" | grep -q "constel-fleet-1:" ||
	fail "alpha's system is not signed by the fleet key"

note "as cdeploy, the health gate restores alpha when its service does not answer"
fleet_commit --only alpha alpha=noservice
cj "$R.3" alpha --health-timeout 3
[ "$rc" = 1 ] || fail "exit $rc"
jq_py "$R.3" 'hosts["alpha"]["status"] == "rolled-back"' || fail "alpha: $(cat "$R.3")"
[ "$(gens alpha)" = "1 " ] || fail "alpha is not back on generation 1 alone: $(gens alpha)"

note "as cdeploy, magic rollback: beta cuts its network, is not confirmed, and its watchdog restores it"
fleet_commit --only beta beta=cutnet
cj "$R.3b" beta --confirm-timeout 4
[ "$rc" = 1 ] || fail "exit $rc after cutnet"
jq_py "$R.3b" 'hosts["beta"]["status"] == "rolled-back" and "not confirmed" in hosts["beta"]["error"]' ||
	fail "beta: $(cat "$R.3b")"
[ "$(gens beta)" = "1 " ] || fail "beta is not back on generation 1 alone: $(gens beta)"

note "as cdeploy, built on the host (through its daemon, the derivations signed)"
fleet_commit --only alpha,beta
cj "$R.3c" alpha --build-on target
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.3c")"
jq_py "$R.3c" 'hosts["alpha"]["status"] == "deployed"' || fail "alpha: $(cat "$R.3c")"

note "the rule allows constel-host alone: any other command as root is refused"
fleet_ssh_as() { ssh -F "$FLEET_DIR/ssh_config" -l cdeploy "$@"; }
! fleet_ssh_as alpha sudo -n /bin/sh -c id 2>/dev/null || fail "cdeploy may run a shell as root"
! fleet_ssh_as alpha sudo -n /usr/bin/id 2>/dev/null || fail "cdeploy may run id as root"

note "as cdeploy: rollback, status, exec"
fleet_commit --only alpha
cj "$R.4" alpha
[ "$rc" = 0 ] || fail "exit $rc: $(cat "$R.4")"
C --json rollback alpha --log-dir "$LOGS" >"$R.5" 2>"$R.5.err"
rc=$?
[ "$rc" = 0 ] || fail "rollback exited $rc: $(cat "$R.5.err")"
was=$(jq_py "$R.4" 'hosts["alpha"]["generation"]')
jq_py "$R.5" 'hosts["alpha"]["status"] == "deployed" and hosts["alpha"]["generation"] < '"$was" ||
	fail "alpha after rollback from generation $was: $(cat "$R.5")"
C --json status alpha beta --no-eval >"$R.6" 2>"$R.6.err"
jq_py "$R.6" 'all(h["generation"] is not None for h in d["hosts"])' || fail "status: $(cat "$R.6") $(cat "$R.6.err")"
C exec alpha -- id -un >"$R.7" 2>&1 || fail "exec: $(cat "$R.7")"
grep -q "^cdeploy$" "$R.7" || fail "exec did not run as cdeploy: $(cat "$R.7")"
# exec --become runs through `sudo -n -- sh -c CMD`: this rule refuses it, as it should
! C exec --become alpha -- id -un >"$R.8" 2>&1 || fail "exec --become passed a rule that allows constel-host alone"
grep -q "a password is required\|not allowed" "$R.8" || fail "exec --become: $(cat "$R.8")"

note "gamma's sudo asks a password: --ask-become-pass feeds it (read from stdin: no terminal)"
fleet_commit --only gamma
# setsid: no controlling terminal, so the password comes from stdin
printf 'wrong\n' | setsid -w "$CONSTEL" -i "$FLEET_DIR/repo/constellation.yaml" --ssh-config "$FLEET_DIR/ssh_config" \
	--json deploy gamma --ask-become-pass --log-dir "$LOGS" >"$R.10" 2>"$R.10.err"
rc=$?
[ "$rc" = 1 ] || fail "exit $rc with a wrong password"
jq_py "$R.10" '"refused the password" in hosts["gamma"]["error"]' || fail "gamma: $(cat "$R.10")"
printf 'hunter2-sudo\n' | setsid -w "$CONSTEL" -i "$FLEET_DIR/repo/constellation.yaml" --ssh-config "$FLEET_DIR/ssh_config" \
	--json deploy gamma --ask-become-pass --log-dir "$LOGS" >"$R.11" 2>"$R.11.err"
rc=$?
cat "$R.11.err"
[ "$rc" = 0 ] || fail "exit $rc with the password: $(cat "$R.11")"
jq_py "$R.11" 'hosts["gamma"]["status"] == "deployed"' || fail "gamma: $(cat "$R.11")"
[ "$(holder_uid gamma)" = 0 ] || fail "gamma's watchdog did not run as root"
! grep -rq "hunter2-sudo" "$LOGS" "$R.11" "$R.11.err" || fail "the password is in a log or the report"
! fleet_exec gamma grep -rq "hunter2-sudo" /var/lib/constel || fail "the password reached the host's records"

note "as cdeploy: constel reboot goes through constel-host"
b0=$(fleet_exec alpha cat /proc/sys/kernel/random/boot_id)
C --json reboot alpha --reboot-timeout 20 --log-dir "$LOGS" >"$R.9" 2>"$R.9.err" ||
	fail "reboot: $(cat "$R.9.err")"
[ "$(fleet_exec alpha cat /proc/sys/kernel/random/boot_id)" != "$b0" ] || fail "alpha has its old boot id"
rm -rf "$D0"
echo ok
