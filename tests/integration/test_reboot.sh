# Reboots: deploy --reboot ends with the new system running after a new boot
# id; a host whose new system does not boot fails within --reboot-timeout
# while the others go on; one that comes back on its old system gets its boot
# generation set back; `constel reboot` on its own; --reboot wants goal boot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/deploy_lib.sh"
health_setup
boot_id() { fleet_exec "$1" cat /proc/sys/kernel/random/boot_id; }

note "--reboot: alpha and gamma reboot into their new systems; beta's does not boot"
a0=$(boot_id alpha) g0=$(boot_id gamma)
fleet_commit beta=noboot
start=$(date +%s)
cj "$R.1" --reboot --reboot-timeout 8
took=$(($(date +%s) - start))
[ "$rc" = 1 ] || fail "exit $rc with a host that does not come back"
for h in alpha gamma; do
	jq_py "$R.1" "hosts['$h']['status'] == 'deployed'" || fail "$h: $(cat "$R.1")"
	[ "$(current $h)" = "$(jq_py "$R.1" "hosts['$h']['path']")" ] || fail "$h does not run its new system"
	fleet_log $h | tail -n 2 | grep -q ' stage2 done$' || fail "$h was not booted: $(fleet_log $h)"
done
[ "$(boot_id alpha)" != "$a0" ] || fail "alpha has its old boot id"
[ "$(boot_id gamma)" != "$g0" ] || fail "gamma has its old boot id"
jq_py "$R.1" 'hosts["beta"]["status"] == "failed" and "did not come back within 8s" in hosts["beta"]["error"]' ||
	fail "beta: $(cat "$R.1")"
[ "$took" -lt 30 ] || fail "--reboot took ${took}s with a reboot timeout of 8s"
fleet_log beta | tail -n 1 | grep -q ' stage2 start$' || fail "beta's boot was not tried: $(fleet_log beta)"

note "gamma's new system falls back to the old one at boot: its boot generation is set back"
g1=$(current gamma) gen1=$(readlink "$(fleet_host_dir gamma)/nix/var/nix/profiles/system")
fleet_commit gamma=badboot
cj "$R.4" gamma --reboot --reboot-timeout 20
[ "$rc" = 1 ] || fail "exit $rc after a boot that fell back"
jq_py "$R.4" 'hosts["gamma"]["status"] == "rolled-back" and "came back from its reboot" in hosts["gamma"]["error"]' ||
	fail "gamma: $(cat "$R.4")"
[ "$(current gamma)" = "$g1" ] || fail "gamma does not run its previous system"
[ "$(readlink "$(fleet_host_dir gamma)/nix/var/nix/profiles/system")" = "$gen1" ] ||
	fail "gamma's boot generation was not set back"

note "constel reboot alpha: a new boot id, the same system, healthy"
a1=$(boot_id alpha) p1=$(current alpha)
C --json reboot alpha --reboot-timeout 20 --log-dir "$LOGS" >"$R.2" 2>"$R.2.err" ||
	fail "constel reboot exited $?: $(cat "$R.2" "$R.2.err")"
jq_py "$R.2" 'hosts["alpha"]["status"] == "deployed"' || fail "reboot: $(cat "$R.2")"
[ "$(boot_id alpha)" != "$a1" ] || fail "constel reboot: alpha has its old boot id"
[ "$(current alpha)" = "$p1" ] || fail "constel reboot: alpha runs another system"
grep -q "health: units passes" "$LOGS/alpha.log" || fail "no health gate after the reboot"

note "--reboot goes with goal boot only"
C deploy --reboot --goal switch >/dev/null 2>"$R.3.err"
[ $? = 2 ] || fail "--reboot --goal switch was not a usage error"
grep -q "goes with --goal boot" "$R.3.err" || fail "$(cat "$R.3.err")"
echo "PASS"
