#!/bin/sh
# The per-commit knobs of the simulated fleet's switch-to-configuration:
# fail, hang, cutnet, noservice; and that the next commit clears them.
set -u
. "$(dirname "$0")/lib.sh"
need_root_and_netns
need_aarch64

fleet_up "$SMALL"
D=$FLEET_DIR
fleet_repo
"$BASELINE" "$D" >/dev/null || fail "first deploy failed"
G1_ALPHA=$(fleet_path alpha)
G1_BETA=$(fleet_path beta)

# copy HOST's new system and run its switch-to-configuration over plain ssh
activate() {
	_p=$(fleet_path "$1")
	NIX_SSHOPTS="-F $D/ssh_config" nix-copy-closure --to "root@$1" "$_p" 2>/dev/null || fail "copy to $1 failed"
	fleet_ssh "$1" "$_p/bin/switch-to-configuration switch"
}

# every PID given is gone (or a zombie waiting for init)
gone() {
	for _p in "$@"; do
		[ ! -d /proc/$_p ] || grep -q '^State:.*Z' /proc/$_p/status || return 1
	done
}

note "commit: alpha=fail beta=hang gamma=noservice"
fleet_commit alpha=fail beta=hang gamma=noservice
grep -q '"knob": "fail"' "$D/repo/fleet.json" || fail "knob not recorded in fleet.json"

note "fail: exit 1 after logging start, nothing switched"
activate alpha 2>"$D/fail.err" && fail "alpha=fail activation succeeded"
grep -q 'simulated activation failure' "$D/fail.err" || fail "fail: stderr: $(cat "$D/fail.err")"
[ "$(fleet_log alpha | tail -n 2)" = "alpha 1 switch done
alpha 2 switch start" ] || fail "fail: log: $(fleet_log alpha)"
[ "$(fleet_ssh alpha readlink /run/current-system)" = "$G1_ALPHA" ] || fail "fail: current-system changed"
port_open "$(fleet_addr alpha)" 8080 || fail "fail: old listeners gone"

note "hang: still running after 3 s, and killable"
NIX_SSHOPTS="-F $D/ssh_config" nix-copy-closure --to root@beta "$(fleet_path beta)" 2>/dev/null || fail "copy to beta"
P2_BETA=$(fleet_path beta)
timeout 3 ssh -F "$D/ssh_config" beta "$P2_BETA/bin/switch-to-configuration switch" 2>/dev/null
rc=$?
[ $rc = 124 ] || fail "hang: ssh ended with $rc within 3 s"
[ "$(fleet_log beta | tail -n 1)" = "beta 2 switch start" ] || fail "hang: log: $(fleet_log beta)"
[ "$(fleet_ssh beta readlink /run/current-system)" = "$G1_BETA" ] || fail "hang: current-system changed"
hung=$(fleet_pgrep beta '^sleep 3600')
[ -n "$hung" ] || fail "hang: no sleeping activation inside beta"
kill $hung || fail "hang: cannot kill $hung"
wait_until 5 gone $hung || fail "hang: $hung survives kill"

note "noservice: switched, old listeners stopped, none started"
activate gamma >/dev/null || fail "noservice: activation failed"
[ "$(fleet_log gamma | tail -n 1)" = "gamma 2 switch done" ] || fail "noservice: log: $(fleet_log gamma)"
port_open "$(fleet_addr gamma)" 8090 && fail "noservice: gamma:8090 still answers"
fleet_ssh gamma 'readlink /run/current-system' | grep -q -- '-nixos-system-gamma-gen2$' || fail "noservice: not switched"

note "cutnet: switch completes, then the host is unreachable"
fleet_commit alpha=cutnet --only alpha
grep -q '"knob": "hang"' "$D/repo/fleet.json" || fail "--only: beta's knob was touched"
P3_ALPHA=$(fleet_path alpha)
case $P3_ALPHA in *-gen3) ;; *) fail "cutnet: alpha at $P3_ALPHA, want gen3" ;; esac
NIX_SSHOPTS="-F $D/ssh_config" nix-copy-closure --to root@alpha "$P3_ALPHA" 2>/dev/null || fail "copy to alpha"
timeout 4 ssh -F "$D/ssh_config" alpha "$P3_ALPHA/bin/switch-to-configuration switch" >/dev/null 2>&1
[ "$(fleet_log alpha | tail -n 2)" = "alpha 3 switch start
alpha 3 switch done" ] || fail "cutnet: log: $(fleet_log alpha)"
port_open "$(fleet_addr alpha)" 22 && fail "cutnet: alpha:22 still reachable"
timeout 5 ssh -F "$D/ssh_config" -o ConnectTimeout=2 alpha true 2>/dev/null && fail "cutnet: ssh still works"
[ "$(fleet_exec alpha readlink /run/current-system)" = "$P3_ALPHA" ] || fail "cutnet: switch did not complete"
note "re-activating generation 1 (from inside) restores the link"
fleet_exec alpha "$G1_ALPHA/bin/switch-to-configuration" switch >/dev/null || fail "re-activating gen1 failed"
wait_until 5 port_open "$(fleet_addr alpha)" 22 || fail "cutnet: link not restored by an older generation"
[ "$(fleet_ssh alpha readlink /run/current-system)" = "$G1_ALPHA" ] || fail "cutnet: rollback not visible over ssh"

note "next full commit clears every knob; the fleet deploys cleanly"
fleet_commit
grep -q '"knob": "[a-z]' "$D/repo/fleet.json" && fail "knobs survive a plain commit: $(cat "$D/repo/fleet.json")"
"$BASELINE" "$D" >/dev/null || { cat "$D"/baseline/*.log; fail "deploy after clearing knobs failed"; }
for hp in alpha:8080 beta:8000 gamma:8090; do
	port_open "$(fleet_addr ${hp%:*})" ${hp#*:} || fail "${hp%:*}: ${hp#*:} not answering after clean deploy"
done
note "ok"
exit 0
