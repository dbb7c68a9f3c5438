#!/bin/sh
# transport/ against the simulated fleet, through tests/tools/ssh-tool:
# exec on x86_64 and aarch64 hosts, bounded output, detached commands, one
# session per host, unknown/changed host keys, unreachable and stalled hosts
# in bounded time, direct-tcpip probes, ProxyJump, closure copy (then a
# second copy that moves nothing).
. "$(dirname "$0")/lib.sh"

need_root_and_netns
need_aarch64
cd "$TOP" || fail "cd $TOP"

TOOL=$TOP/build/ssh-tool
note "build ssh-tool"
# built by `make tools` (a prerequisite of `make integration`), SANITIZE=1 or not
[ -x "$TOOL" ] || make -s -C "$TOP" tools >/dev/null || fail "cannot build ssh-tool"

fleet_up "$SMALL"
CFG=$FLEET_DIR/ssh_config
T() { env -u SSH_AUTH_SOCK "$TOOL" -F "$CFG" "$@"; }
accepted() { grep -c 'Accepted publickey' "$FLEET_DIR/hosts/$1/sshd.log"; }
elapsed_ok() { # START MAX: fail unless less than MAX seconds passed
	[ $(($(date +%s) - $1)) -lt "$2" ] || fail "took $(($(date +%s) - $1))s, bound is ${2}s"
}

note "exec on x86_64 (alpha): output, stderr and exit status relayed"
out=$(T exec alpha 'hostname; echo oops >&2; exit 7' 2>"$FLEET_DIR/err")
rc=$?
[ "$rc" = 7 ] || fail "exit status $rc, want 7"
[ "$out" = alpha ] || fail "stdout '$out'"
grep -qx oops "$FLEET_DIR/err" || fail "stderr: $(cat "$FLEET_DIR/err")"
out=$(T exec alpha 'kill -TERM $$' 2>&1)
echo "$out" | grep -q 'SIGTERM' || fail "signal not reported: $out"

note "exec on aarch64 (gamma)"
out=$(T exec gamma 'hostname; /bin/busybox uname -m') || fail "exec on gamma"
[ "$out" = "gamma
aarch64" ] || fail "gamma said: $out"

note "remote output is bounded (1 MiB in ssh-tool)"
err=$(T -s exec alpha 'head -c 5000000 /dev/zero; echo done >&2' 2>&1 >/dev/null)
echo "$err" | grep -q 'out=1048576 err=5 truncated=1' || fail "not bounded: $err"

note "stdin streams from a file and from memory"
head -c 20000000 /dev/urandom >"$FLEET_DIR/blob"
want=$(sha256sum <"$FLEET_DIR/blob")
got=$(T -i "$FLEET_DIR/blob" exec alpha sha256sum) || fail "exec with stdin"
[ "$got" = "$want" ] || fail "stdin corrupted: $got vs $want"

out=$(T -i "$FLEET_DIR/blob" exec alpha 'head -c 10 | wc -c') || fail "early exit with stdin left"
[ "$out" = 10 ] || fail "head -c 10 read $out"
T -i "$FLEET_DIR/blob" exec alpha true || fail "a command that reads no input"

note "one session for many operations"
before=$(accepted alpha)
err=$(T -s -n 20 exec alpha true 2>&1) || fail "20 execs: $err"
echo "$err" | grep -q 'connections=1$' || fail "$err"
[ $(($(accepted alpha) - before)) = 1 ] || fail "sshd saw $(($(accepted alpha) - before)) logins"

note "threads: one connection per host, all at once"
out=$(T -n 5 pexec hostname alpha beta gamma 2>"$FLEET_DIR/err") || fail "pexec: $out"
[ "$out" = "alpha 0 alpha
beta 0 beta
gamma 0 gamma" ] || fail "pexec said: $out"
grep -q 'connections=3$' "$FLEET_DIR/err" || fail "pexec: $(cat "$FLEET_DIR/err")"

note "a detached command: the channel closes after exit status"
start=$(date +%s)
out=$(T exec alpha 'setsid sh -c "sleep 97" </dev/null >/dev/null 2>&1 & echo started') ||
	fail "detached exec"
[ "$out" = started ] || fail "detached: $out"
elapsed_ok "$start" 3
[ -n "$(fleet_pgrep alpha 'sleep 97')" ] || fail "the detached command did not survive"
# even one that keeps our stdout open does not hold the channel for long
start=$(date +%s)
T exec alpha 'sleep 98 & echo started' >/dev/null || fail "background exec"
elapsed_ok "$start" 4

note "direct-tcpip probe"
T exec alpha 'setsid /usr/bin/python3 -c "
import socket, time
s = socket.socket(); s.bind((\"127.0.0.1\", 7777)); s.listen(); time.sleep(60)
" </dev/null >/dev/null 2>&1 &' || fail "start listener"
wait_until 10 T probe alpha 7777 || fail "probe of a listening port failed"
T probe alpha 7778 2>"$FLEET_DIR/err"
rc=$?
[ "$rc" = 3 ] || fail "probe of a closed port: exit $rc ($(cat "$FLEET_DIR/err"))"

note "unknown host key refused, with fingerprint and the line to add"
sed "s#UserKnownHostsFile .*#UserKnownHostsFile $FLEET_DIR/kh_empty#" "$CFG" >"$FLEET_DIR/cfg_empty"
: >"$FLEET_DIR/kh_empty"
err=$(env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_empty" exec alpha true 2>&1) &&
	fail "connected to an unknown host"
echo "$err" | grep -q "'alpha (10\.231\.[0-9.]*:22)': unknown host key ssh-ed25519 SHA256:" ||
	fail "message: $err"
addr=$(fleet_addr alpha)
echo "$err" | grep -q "add this line to '$FLEET_DIR/kh_empty': $addr ssh-ed25519 AAAA" ||
	fail "no known_hosts line: $err"
[ ! -s "$FLEET_DIR/kh_empty" ] || fail "strict mode wrote known_hosts"

note "StrictHostKeyChecking accept-new adds it"
sed 's/StrictHostKeyChecking yes/StrictHostKeyChecking accept-new/' "$FLEET_DIR/cfg_empty" \
	>"$FLEET_DIR/cfg_new"
env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_new" exec alpha true || fail "accept-new refused"
grep -q "^$addr ssh-ed25519 " "$FLEET_DIR/kh_empty" || fail "accept-new did not record the key"
env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_empty" exec alpha true ||
	fail "the recorded key is not accepted in strict mode"

note "StrictHostKeyChecking no: an unknown key is recorded, as with accept-new"
# libssh reads the option from the same file; with `no` it would call any key
# missing from GlobalKnownHostsFile (/dev/null here) known, and record nothing
sed 's/StrictHostKeyChecking yes/StrictHostKeyChecking no/' "$FLEET_DIR/cfg_empty" \
	>"$FLEET_DIR/cfg_no"
: >"$FLEET_DIR/kh_empty"
env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_no" exec alpha true || fail "no: refused"
grep -q "^$addr ssh-ed25519 " "$FLEET_DIR/kh_empty" || fail "no: the key was not recorded"

note "changed host key refused loudly, also under accept-new and no"
beta_key=$(cut -d' ' -f1,2 "$FLEET_DIR/hosts/beta/ssh_host_ed25519_key.pub")
echo "$addr $beta_key" >"$FLEET_DIR/kh_empty"
for cfg in cfg_empty cfg_new cfg_no; do
	err=$(env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/$cfg" exec alpha true 2>&1) &&
		fail "connected despite a changed key ($cfg)"
	echo "$err" | grep -q "'alpha (.*)': HOST KEY MISMATCH" || fail "message ($cfg): $err"
done
[ "$(cat "$FLEET_DIR/kh_empty")" = "$addr $beta_key" ] || fail "known_hosts was changed"

note "authentication: public key only, the keys tried are named"
sed "s#IdentityFile .*#IdentityFile $FLEET_DIR/nokey#" "$CFG" >"$FLEET_DIR/cfg_nokey"
ssh-keygen -q -t ed25519 -N '' -f "$FLEET_DIR/nokey" || fail "ssh-keygen"
err=$(env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_nokey" exec alpha true 2>&1 </dev/null) &&
	fail "authenticated with a stranger's key"
echo "$err" | grep -q "permission denied for user 'root' (public key only); tried: $FLEET_DIR/nokey (refused)" ||
	fail "message: $err"

note "authentication: the agent first"
cat >"$FLEET_DIR/cfg_agent" <<EOF
Host alpha-agent
  HostName $(fleet_addr alpha)
  IdentityFile $FLEET_DIR/absent_key
  UserKnownHostsFile $FLEET_DIR/known_hosts
EOF
eval "$(ssh-agent -s -a "$FLEET_DIR/agent.sock")" >/dev/null || fail "ssh-agent"
agent_pid=$SSH_AGENT_PID
ssh-add -q "$FLEET_DIR/id_ed25519" 2>/dev/null || { kill "$agent_pid"; fail "ssh-add"; }
out=$("$TOOL" -F "$FLEET_DIR/cfg_agent" exec alpha-agent hostname 2>&1)
ssh-add -q -D 2>/dev/null
err=$("$TOOL" -F "$FLEET_DIR/cfg_agent" exec alpha-agent hostname 2>&1 </dev/null)
rc=$?
kill "$agent_pid"
unset SSH_AUTH_SOCK SSH_AGENT_PID
[ "$out" = alpha ] || fail "agent auth: $out"
[ "$rc" = 1 ] || fail "authenticated with an empty agent: $err"
echo "$err" | grep -q "tried: agent keys at $FLEET_DIR/agent.sock" || fail "message: $err"

note "ProxyJump through alpha to beta (no ssh child)"
cat >"$FLEET_DIR/cfg_jump" <<EOF
Include $CFG
Host beta-via-alpha
  HostName $(fleet_addr beta)
  ProxyJump alpha
  IdentityFile $FLEET_DIR/id_ed25519
  UserKnownHostsFile $FLEET_DIR/known_hosts
EOF
out=$(env -u SSH_AUTH_SOCK "$TOOL" -F "$FLEET_DIR/cfg_jump" -s exec beta-via-alpha hostname 2>"$FLEET_DIR/err") ||
	fail "jump: $(cat "$FLEET_DIR/err")"
[ "$out" = beta ] || fail "jump reached '$out'"
grep -q 'connections=2' "$FLEET_DIR/err" || fail "jump: $(cat "$FLEET_DIR/err")"

note "unreachable host: fails in bounded time, naming it"
fleet_exec beta ip link set eth0 down || fail "cut beta"
start=$(date +%s)
T -t 3 exec beta true 2>"$FLEET_DIR/err"
rc=$?
elapsed_ok "$start" 6
[ "$rc" = 4 ] || fail "exit $rc: $(cat "$FLEET_DIR/err")"
grep -q "'beta (.*)': no answer within 3s" "$FLEET_DIR/err" || fail "$(cat "$FLEET_DIR/err")"
fleet_exec beta ip link set eth0 up || fail "uncut beta"

note "a host that stops answering mid-command: bounded by the operation timeout"
start=$(date +%s)
T -T 4 exec beta 'echo started; sleep 60' >"$FLEET_DIR/out" 2>"$FLEET_DIR/err" &
pid=$!
wait_until 10 grep -qs started "$FLEET_DIR/out" || fail "command did not start"
fleet_exec beta ip link set eth0 down || fail "cut beta"
wait $pid
rc=$?
fleet_exec beta ip link set eth0 up
elapsed_ok "$start" 12
[ "$rc" = 4 ] || fail "exit $rc: $(cat "$FLEET_DIR/err")"
grep -q "'beta (.*)': no answer for 4s" "$FLEET_DIR/err" || fail "$(cat "$FLEET_DIR/err")"

note "closure copy (x86_64, multi-path), then again: nothing moves"
fleet_repo --payload alpha=6:5 --payload gamma=2:3
P=$(fleet_path alpha)
nix-store -qR "$P" >"$FLEET_DIR/closure" || fail "nix-store -qR"
n=$(wc -l <"$FLEET_DIR/closure")
[ "$n" -ge 9 ] || fail "closure has only $n paths"
before=$(accepted alpha)
T copy alpha <"$FLEET_DIR/closure" 2>"$FLEET_DIR/err" || fail "copy: $(cat "$FLEET_DIR/err")"
cat "$FLEET_DIR/err"
[ $(($(accepted alpha) - before)) = 1 ] || fail "sshd saw $(($(accepted alpha) - before)) logins"
grep -q "copy: paths=$n missing=$n bytes=[1-9][0-9]* .* round_trips=2 connections=1" \
	"$FLEET_DIR/err" || fail "first copy: $(cat "$FLEET_DIR/err")"
# shellcheck disable=SC2046
T exec alpha "nix-store --check-validity $(tr '\n' ' ' <"$FLEET_DIR/closure")" ||
	fail "closure not valid on alpha"
T exec alpha "test -x $P/bin/switch-to-configuration" || fail "closure content missing"
before=$(accepted alpha)
T copy alpha <"$FLEET_DIR/closure" 2>"$FLEET_DIR/err" || fail "copy 2: $(cat "$FLEET_DIR/err")"
cat "$FLEET_DIR/err"
grep -q "copy: paths=$n missing=0 bytes=0 .* round_trips=1 connections=1" "$FLEET_DIR/err" ||
	fail "second copy: $(cat "$FLEET_DIR/err")"
[ $(($(accepted alpha) - before)) = 1 ] || fail "sshd saw $(($(accepted alpha) - before)) logins"

note "partial copy: only what is missing"
G=$(fleet_path gamma)
nix-store -qR "$G" >"$FLEET_DIR/closure_g" || fail "nix-store -qR gamma"
T copy gamma $(head -n 2 "$FLEET_DIR/closure_g") 2>"$FLEET_DIR/err" || fail "$(cat "$FLEET_DIR/err")"
T copy gamma <"$FLEET_DIR/closure_g" 2>"$FLEET_DIR/err" || fail "$(cat "$FLEET_DIR/err")"
m=$(($(wc -l <"$FLEET_DIR/closure_g") - 2))
grep -q "missing=$m " "$FLEET_DIR/err" || fail "gamma copy: $(cat "$FLEET_DIR/err")"
out=$(T exec gamma "$G/sw/bin/busybox uname -m") || fail "copied busybox does not run"
[ "$out" = aarch64 ] || fail "gamma's copied busybox says $out"

note "a path that is not in the local store fails with the host named"
err=$(T copy beta /nix/store/00000000000000000000000000000000-nothing 2>&1) &&
	fail "copied a path that does not exist"
echo "$err" | grep -q "'beta (.*)': '/nix/store/0*-nothing' is not a valid path of the local store" ||
	fail "message: $err"

echo "transport: all checks passed"
