# Shared helpers for tests/integration/test_*.sh (POSIX sh; source it:
#   . "$(dirname "$0")/lib.sh"
# ). A test exits 0 to pass, 77 to skip (reason on the last line), else fails.
#
#   need_root_and_netns       skip unless root and `ip netns add` works; fail
#                             (not skip) if a package the fleet needs is missing
#   need_aarch64              fail unless aarch64 binaries run (qemu-user + binfmt)
#   fleet_up INVENTORY        fresh DIR under /tmp, `fleet up DIR INVENTORY`;
#                             sets FLEET_DIR; DIR is always torn down at exit
#   fleet_repo [ARGS...]      `mkrepo FLEET_DIR INVENTORY ARGS...` (same inventory)
#   fleet_commit [ARGS...]    `mkrepo commit FLEET_DIR ARGS...`
#   fleet_path HOST...        build HOST's toplevel, print its store path
#   fleet_ssh HOST CMD...     plain OpenSSH with FLEET_DIR/ssh_config
#   fleet_exec HOST CMD...    run CMD inside HOST's namespaces (no SSH)
#   fleet_addr HOST           HOST's address
#   C ARGS...                 constel with the fleet repo's inventory and ssh_config
#   current HOST              the store path /run/current-system points to on HOST
#   fleet_pids HOST           PIDs of every live process in HOST's namespaces
#   fleet_pgrep HOST PATTERN  those of them whose command line matches PATTERN
#   fleet_log HOST            HOST's activation log, as the orchestrator sees it
#   fleet_host_dir HOST       FLEET_DIR/hosts/HOST (nix/ varlib/ etcnix/ root/)
#   port_open ADDR PORT       0 if ADDR:PORT accepts a TCP connection (1 s)
#   wait_until SECONDS CMD... retry CMD every 0.2 s until it succeeds
#   skip "reason" / fail "msg"
#
# Every Nix call must never reach the internet: NIX_CONFIG is exported here
# (substituters and flake-registry empty) and applies to everything the test
# runs, including constel and the baseline script.

TOP=$(cd "$(dirname "$0")/../.." && pwd)
# exports NIX_CONFIG (empty substituters and flake-registry, flakes, aarch64)
. "$TOP/tests/fleet/env.sh"
FLEET=$TOP/tests/fleet/fleet
MKREPO=$TOP/tests/fleet/mkrepo
BASELINE=$TOP/tests/bench/baseline-deploy
CONSTEL=$TOP/constel
SMALL=$TOP/tests/fleet/examples/small.yaml

FLEET_DIR=
FLEET_INVENTORY=
_fleet_dirs=
_skip_reason=

skip() {
	_skip_reason="SKIP: $*"
	echo "$_skip_reason"
	exit 77
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() {
	echo "== $*"
}

_fleet_cleanup() {
	_had=$_fleet_dirs
	for d in $_fleet_dirs; do
		"$FLEET" down "$d" >/dev/null 2>&1 || echo "warning: fleet down $d failed" >&2
		if [ -n "${KEEP_FLEET:-}" ]; then
			echo "kept $d (KEEP_FLEET)" >&2
		else
			rm -rf "$d"
		fi
	done
	_fleet_dirs=
	# the runner shows the last line of a skipped test's output
	[ -z "$_had" ] || [ -z "$_skip_reason" ] || echo "$_skip_reason"
}
trap '_fleet_cleanup' EXIT
trap '_fleet_cleanup; trap - EXIT; exit 130' INT
trap '_fleet_cleanup; trap - EXIT; exit 143' TERM
trap '_fleet_cleanup; trap - EXIT; exit 129' HUP

need_root_and_netns() {
	[ "$(id -u)" = 0 ] || skip "needs root (network and mount namespaces)"
	command -v ip >/dev/null 2>&1 || skip "needs iproute2 (ip)"
	_ns=constel-probe-$$
	ip netns add "$_ns" >/dev/null 2>&1 || skip "cannot create network namespaces (ip netns add failed)"
	ip netns del "$_ns" >/dev/null 2>&1
	[ -x /usr/sbin/sshd ] || fail "needs openssh-server (/usr/sbin/sshd)"
	command -v ssh >/dev/null 2>&1 || fail "needs openssh-client (ssh)"
	command -v nix-store >/dev/null 2>&1 || fail "needs nix-bin (nix-store)"
	command -v nsenter >/dev/null 2>&1 || fail "needs util-linux (nsenter, unshare)"
	/usr/bin/python3 -c 'import yaml' 2>/dev/null || fail "needs python3-yaml for /usr/bin/python3"
}

need_aarch64() {
	[ -x /bin/busybox ] || fail "needs busybox-static:arm64 (/bin/busybox)"
	_m=$(/bin/busybox uname -m 2>/dev/null)
	[ "$_m" = aarch64 ] || fail "/bin/busybox is not an aarch64 binary running under qemu-user (uname -m: ${_m:-none}); install busybox-static:arm64, qemu-user-static, and enable binfmt (update-binfmts --enable qemu-aarch64)"
}

fleet_up() {
	_d=$(mktemp -d /tmp/constel-fleet.XXXXXX) || fail "mktemp"
	_fleet_dirs="$_fleet_dirs $_d"
	FLEET_DIR=$_d
	FLEET_INVENTORY=$1
	# constel's state (run logs, GC roots) goes with the fleet, not into ~
	[ -n "${XDG_STATE_HOME:-}" ] || { XDG_STATE_HOME=$_d/state; export XDG_STATE_HOME; }
	"$FLEET" up "$_d" "$1" || fail "fleet up $1 failed"
}

fleet_repo() {
	"$MKREPO" "$FLEET_DIR" "$FLEET_INVENTORY" "$@" >/dev/null || fail "mkrepo failed"
}

fleet_commit() {
	"$MKREPO" commit "$FLEET_DIR" "$@" >/dev/null || fail "mkrepo commit $* failed"
}

fleet_path() {
	"$MKREPO" path "$FLEET_DIR" "$@" || fail "building $* failed"
}

fleet_ssh() {
	_h=$1
	shift
	ssh -F "$FLEET_DIR/ssh_config" "$_h" "$@"
}

fleet_exec() {
	"$FLEET" exec "$FLEET_DIR" "$@"
}

C() {
	"$CONSTEL" -i "$FLEET_DIR/repo/constellation.yaml" --ssh-config "$FLEET_DIR/ssh_config" "$@"
}

current() {
	fleet_exec "$1" readlink -f /run/current-system
}

fleet_addr() {
	"$FLEET" addr "$FLEET_DIR" "$1"
}

fleet_pids() {
	_net=$(readlink "/proc/$("$FLEET" pid "$FLEET_DIR" "$1")/ns/net") || return 1
	for _p in /proc/[0-9]*; do
		[ "$(readlink "$_p/ns/net" 2>/dev/null)" = "$_net" ] || continue
		grep -q '^State:.*Z' "$_p/status" 2>/dev/null && continue
		echo "${_p#/proc/}"
	done
}

fleet_pgrep() {
	for _p in $(fleet_pids "$1"); do
		{ tr '\0' ' ' <"/proc/$_p/cmdline"; } 2>/dev/null | grep -q -- "$2" && echo "$_p"
	done
}

fleet_host_dir() {
	echo "$FLEET_DIR/hosts/$1"
}

fleet_log() {
	cat "$FLEET_DIR/hosts/$1/varlib/fleet/activation.log" 2>/dev/null
}

port_open() {
	/usr/bin/python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
' "$1" "$2"
}

wait_until() {
	_secs=$1
	shift
	_end=$(($(date +%s) + _secs))
	while ! "$@"; do
		[ "$(date +%s)" -lt "$_end" ] || return 1
		sleep 0.2
	done
}
