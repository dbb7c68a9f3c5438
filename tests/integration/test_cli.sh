# The command line, without any host: each command's options (--help, the
# man page, refusals of options it does not take), the completion scripts,
# and the one JSON document of exit status 2. Every command run here fails
# before contacting a host, or is plan, help, completion or __complete-hosts.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
C=$TOP/constel
EX=$TOP/examples/constellation.yaml
MAN=$TOP/docs/constel.1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "== $*"; }

# The options each command takes: exactly these, no more (build and rollback
# share deploy's code but not its options).
expected() {
	case $1 in
	plan) echo "--on --with-deps --dot" ;;
	build) echo "--on --with-deps --build-on --allow-emulation --eval-jobs --eval-max-memory" \
		"--no-eval-cache --rev --log-dir" ;;
	deploy) echo "--on --with-deps --goal --parallel --confirm-timeout --no-magic-rollback" \
		"--no-auto-rollback --rollback-fleet --dry-run --build-on --allow-emulation --eval-jobs" \
		"--eval-max-memory --no-eval-cache --activation-timeout" \
		"--health-timeout --require-healthy --reboot --reboot-timeout --rev --allow-dirty" \
		"--no-substitute --ask-become-pass --log-dir" ;;
	rollback) echo "--on --to --repair --goal --parallel --confirm-timeout --no-magic-rollback" \
		"--no-auto-rollback --activation-timeout --health-timeout --ask-become-pass" \
		"--log-dir" ;;
	reboot) echo "--on --parallel --reboot-timeout --health-timeout --ask-become-pass --log-dir" ;;
	status) echo "--on --parallel --no-eval --eval-jobs --eval-max-memory --no-eval-cache" ;;
	exec) echo "--on --parallel --prefix --become" ;;
	registry) echo "--nix" ;;
	log | help | completion | sudoers) echo "" ;;
	*) fail "no expected options for '$1'" ;;
	esac
}
GLOBALS="--inventory --ssh-config --json --verbose --help --version"

# the long options listed under the heading $2 of the help text in $1
listed() {
	awk -v h="$2" '
		$0 == h { on = 1; next }
		on && /^$/ { exit }
		on && /^ +-/ { for (i = 1; i <= NF; i++) if ($i ~ /^--/) { print $i; break } }
	' "$1" | tr '\n' ' ' | sed 's/ $//'
}

# the man page section of command $1 (from its .SS to the next .SS or .SH), dashes unescaped
man_section() {
	awk -v c="$1" '
		index($0, ".SS \"" c " ") == 1 || $0 == ".SS \"" c "\"" { on = 1; next }
		on && /^\.S[SH] / { exit }
		on
	' "$MAN" | sed 's/\\-/-/g'
}

note "constel --help lists the commands"
"$C" --help >"$T/help" || fail "constel --help exited $?"
COMMANDS=$(awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' "$T/help" | tr '\n' ' ')
[ "$COMMANDS" = "plan build deploy rollback reboot status log exec registry sudoers help completion " ] ||
	fail "commands: $COMMANDS"
[ "$(listed "$T/help" "global options (before or after the command):")" = "$GLOBALS" ] ||
	fail "global options in --help: $(listed "$T/help" "global options (before or after the command):")"
grep -q __complete "$T/help" && fail "the hidden command is listed"
"$C" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no command: exit not 2"

sed 's/\\-/-/g' "$MAN" >"$T/man"
for g in $GLOBALS; do
	man_globals=$(awk '/^\.SH GLOBAL OPTIONS/ { on = 1; next } on && /^\.SH / { exit } on' "$T/man")
	echo "$man_globals" | grep -q -- "$g" || fail "man page: global option $g not documented"
done

for c in $COMMANDS; do
	note "$c --help"
	"$C" "$c" --help >"$T/$c.help" 2>&1 || fail "$c --help exited $?"
	head -n 1 "$T/$c.help" | grep -q "^usage: constel $c" || fail "$c --help: $(head -n 1 "$T/$c.help")"
	got=$(listed "$T/$c.help" "options:")
	[ "$got" = "$(expected "$c")" ] || fail "$c takes '$got', expected '$(expected "$c")'"
	[ "$(listed "$T/$c.help" "global options (before or after the command):")" = "$GLOBALS" ] ||
		fail "$c --help: global options missing"
	# every option says what it does: a line of its own with help text
	for o in $got; do
		grep -E -q -- "^  $o( [^ ]+)?  +[a-z]" "$T/$c.help" ||
			grep -E -q -- "^  $o( [^ ]+)?\$" "$T/$c.help" || fail "$c --help: $o is not explained"
	done
	"$C" help "$c" >"$T/$c.help2" || fail "help $c"
	cmp -s "$T/$c.help" "$T/$c.help2" || fail "'help $c' differs from '$c --help'"
	# the man page documents each option in the command's own section
	man_section "$c" >"$T/$c.man"
	[ -s "$T/$c.man" ] || fail "man page: no section for $c"
	for o in $got; do
		grep -q -- "^\.B $o\( \|\$\)" "$T/$c.man" || fail "man page: $c's $o is not documented"
	done
done

note "options of another command are refused (exit 2, naming option and command)"
ALL=$(for c in $COMMANDS; do expected "$c"; done | tr ' ' '\n' | sort -u)
for c in $COMMANDS; do
	mine=" $(expected "$c") "
	for o in $ALL; do
		case $mine in *" $o "*) continue ;; esac
		# a missing inventory: even an accepted option could not start anything
		"$C" -i "$T/none.yaml" "$c" "$o" x >/dev/null 2>"$T/e"
		rc=$?
		[ $rc -eq 2 ] || fail "$c $o: exit $rc"
		grep -q "unknown option '$o' for '$c'" "$T/e" || fail "$c $o: $(cat "$T/e")"
	done
done
"$C" -i "$EX" rollback --dry-run galactica 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "rollback --dry-run: exit $rc"
grep -q "unknown option '--dry-run' for 'rollback' (it is an option of 'deploy')" "$T/e" ||
	fail "rollback --dry-run: $(cat "$T/e")"
"$C" -i "$EX" build --goal boot 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "build --goal boot: exit $rc"
grep -q "unknown option '--goal' for 'build'" "$T/e" || fail "build --goal: $(cat "$T/e")"
"$C" -i "$EX" deploy --dryrun 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "deploy --dryrun: exit $rc"
grep -q "did you mean '--dry-run'" "$T/e" || fail "no suggestion: $(cat "$T/e")"

note "values: --x=v and --x v, bad numbers and choices, --"
"$C" -i "$EX" plan --json --on=@board >"$T/p1" || fail "--on=@board"
"$C" plan --on @board --json -i "$EX" >"$T/p2" || fail "--on @board"
cmp -s "$T/p1" "$T/p2" || fail "--on=@board and --on @board differ"
grep -q '"viper"' "$T/p1" || fail "--on=@board: $(cat "$T/p1")"
"$C" -i "$EX" plan --json -- cylon | grep -q '"waves":\[\["cylon"\]\]' || fail "-- then a host"
for bad in "--parallel 0" "--parallel 4x" "--parallel=" "--confirm-timeout -1" "--goal reboot" \
	"--build-on remote" "--dry-run=yes" "--parallel"; do
	# shellcheck disable=SC2086 # the option and its value are two words
	"$C" -i "$T/none.yaml" deploy $bad >/dev/null 2>"$T/e"; rc=$?
	[ $rc -eq 2 ] || fail "deploy $bad: exit $rc"
	grep -q "option '--[a-z-]*' for 'deploy'" "$T/e" || fail "deploy $bad: $(cat "$T/e")"
done
"$C" -i "$EX" exec galactica 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "exec without a command: exit $rc"
"$C" -i "$EX" rollback 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "rollback without hosts: exit $rc"
"$C" -i "$EX" log a b 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "log with two hosts: exit $rc"

note "completion scripts"
"$C" completion bash >"$T/c.bash" || fail "completion bash"
"$C" completion zsh >"$T/c.zsh" || fail "completion zsh"
"$C" completion fish >"$T/c.fish" || fail "completion fish"
"$C" completion tcsh >/dev/null 2>&1; [ $? -eq 2 ] || fail "completion tcsh: exit not 2"
bash -n "$T/c.bash" || fail "the bash script does not parse"
bash -c '. <("$1" completion bash); complete -p constel' sh "$C" >"$T/cp" ||
	fail "bash: complete -p constel failed after sourcing"
grep -q '_constel constel' "$T/cp" || fail "bash: $(cat "$T/cp")"
zsh -n "$T/c.zsh" || fail "the zsh script does not parse"
fish -n "$T/c.fish" || fail "the fish script does not parse"

HOSTS="galactica pegasus raptor viper cylon @tier1 @storage @home @cloud @network @board"
got=$("$C" -i "$EX" __complete-hosts | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$HOSTS" ] || fail "__complete-hosts: '$got'"
got=$(cd "$TOP/examples" && "$C" __complete-hosts | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$HOSTS" ] || fail "__complete-hosts with the default inventory: '$got'"
"$C" -i "$T/none.yaml" __complete-hosts >"$T/o" 2>&1 || fail "__complete-hosts without inventory: exit $?"
[ -s "$T/o" ] && fail "__complete-hosts without inventory printed: $(cat "$T/o")"
(cd "$T" && "$C" __complete-hosts >"$T/o" 2>&1) || fail "__complete-hosts, no default inventory"
[ -s "$T/o" ] && fail "__complete-hosts, no default inventory, printed: $(cat "$T/o")"

# what the shells offer, through the scripts, with constel on PATH
PATH=$TOP:$PATH
export PATH
bash_complete() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _constel
		printf "%s\n" "${COMPREPLY[@]}"' sh "$T/c.bash" "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}
sorted() { echo "$@" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }
got=$(bash_complete constel -i "$EX" deploy "")
[ "$got" = "$(sorted "$HOSTS")" ] || fail "bash: hosts of deploy: '$got'"
got=$(bash_complete constel -i "$EX" plan --on "galactica,@t")
[ "$got" = "galactica,@tier1" ] || fail "bash: --on list: '$got'"
got=$(bash_complete constel dep)
[ "$got" = "deploy" ] || fail "bash: commands: '$got'"
got=$(bash_complete constel deploy --goal "")
[ "$got" = "boot dry-activate switch test" ] || fail "bash: goals: '$got'"
got=$(bash_complete constel build --g)
[ "$got" = "" ] || fail "bash: build offers '$got' for --g"
got=$(bash_complete constel rollback --dry)
[ "$got" = "" ] || fail "bash: rollback offers '$got' for --dry"
fish_complete() {
	# shellcheck disable=SC2016 # fish code: fish expands it
	fish -c 'source $argv[1]; complete -C $argv[2]' "$T/c.fish" "$1" | cut -f 1 | sort |
		tr '\n' ' ' | sed 's/ $//'
}
got=$(fish_complete "constel -i $EX status ")
[ "$got" = "$(sorted "$HOSTS")" ] || fail "fish: hosts of status: '$got'"
got=$(fish_complete "constel -i $EX deploy --on raptor,@n")
[ "$got" = "raptor,@network" ] || fail "fish: --on list: '$got'"
got=$(fish_complete "constel build --")
[ "$got" = "$(sorted "$(expected build)" "$GLOBALS")" ] ||
	fail "fish: build's options: '$got'"

note "exit status 2 prints one JSON document"
check_json() { # FILE RESULT PYTHON-ASSERTIONS
	/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == sys.argv[2], d
errors = d["errors"]
assert isinstance(errors, list) and errors, d
exec(sys.argv[3])
' "$@" || fail "JSON document ($2): $(cat "$1")"
}
printf 'hosts:\n  a:\n    adress: x\n    services: { p: 70000 }\n' >"$T/bad.yaml"
"$C" --json -i "$T/bad.yaml" deploy >"$T/j" 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "invalid inventory: exit $rc"
grep -q "bad.yaml:3:5: unknown key 'adress'" "$T/e" || fail "invalid inventory, stderr: $(cat "$T/e")"
check_json "$T/j" invalid '
assert len(errors) == 2, errors
for e in errors:
    assert set(e) == {"file", "line", "column", "message"}, e
    assert e["file"].endswith("bad.yaml"), e
assert (errors[0]["line"], errors[0]["column"]) == (3, 5), errors[0]
assert errors[0]["message"].startswith("unknown key '"'"'adress'"'"'"), errors[0]
assert (errors[1]["line"], errors[1]["column"]) == (4, 20), errors[1]
'
"$C" --json -i "$T/none.yaml" plan >"$T/j" 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "missing inventory: exit $rc"
check_json "$T/j" invalid '
assert errors[0]["line"] is None and errors[0]["column"] is None, errors
assert "cannot open" in errors[0]["message"], errors
'
cat >"$T/cycle.yaml" <<'Y'
hosts:
  a: { services: { x: 1 }, uses: [y] }
  b: { services: { y: 2 }, uses: [z] }
  c: { services: { z: 3 }, depends_on: [a] }
Y
"$C" -i "$T/cycle.yaml" plan --json >"$T/j" 2>"$T/e"; rc=$?
[ $rc -eq 2 ] || fail "cycle: exit $rc"
grep -q 'dependency cycle: a → b → c → a' "$T/e" || fail "cycle, stderr: $(cat "$T/e")"
check_json "$T/j" invalid '
assert [(e["line"], e["column"]) for e in errors] == [(2, 35), (3, 35), (4, 41)], errors
for e in errors:
    assert e["file"].endswith("cycle.yaml") and "a → b → c → a" in e["message"], e
assert errors[2]["message"].endswith("c → a: depends_on a"), errors[2]
'
for args in "plan --frobnicate" "rollback --dry-run galactica" "frobnicate" "plan nosuchhost" \
	"deploy --parallel 0" "plan --on @nosuchtag" "exec galactica"; do
	# shellcheck disable=SC2086 # the words of the command line
	"$C" -i "$EX" --json $args >"$T/j" 2>"$T/e"; rc=$?
	[ $rc -eq 2 ] || fail "$args: exit $rc"
	check_json "$T/j" usage '
for e in errors:
    assert set(e) == {"message"} and e["message"], e
'
done
"$C" -i "$EX" --json plan nosuchhost 2>/dev/null | grep -q "unknown host 'nosuchhost'" ||
	fail "unknown host: the message"
# without --json, stdout stays empty
"$C" -i "$EX" plan --frobnicate >"$T/o" 2>/dev/null
[ -s "$T/o" ] && fail "bad usage without --json printed on stdout"

echo "all good"
