#include "deploy/host.h"

#include <stdlib.h>
#include <string.h>

/*
 * The watchdog. Arguments: RUNID MODE VALUE GOAL CONFIRM LIMIT AUTO DELETE
 * where MODE is `path` (VALUE a store path) or `gen` (VALUE a generation).
 * It always ends by writing `phase=done` with a result (ok, rolled-back,
 * failed) and removing the lock, whatever happens to the SSH connection.
 * Its fd 3 is the write end of the FIFO the start command waits on: the
 * first milestone (awaiting-confirm, or done) is written there once, so
 * constel learns it at once, without polling.
 */
static const char watchdog_script[] =
	"# constel watchdog: activates one system, restores the previous one on failure\n"
	"trap '' HUP PIPE\n"
	"runid=$1 mode=$2 value=$3 goal=$4 confirm=$5 limit=$6 auto=$7 delete=$8\n"
	"profile=/nix/var/nix/profiles/system\n"
	"cd /run/constel || exit 1\n"
	"log() { printf '%s constel: %s\\n' \"$(date '+%F %T')\" \"$*\" >> activation.log; }\n"
	"state() { printf '%s\\n' \"run=$runid\" \"$@\" > state.tmp && mv -f state.tmp state; }\n"
	"gen_of() {\n"
	"	l=$(readlink \"$profile\" 2>/dev/null) || { echo 0; return; }\n"
	"	l=${l##*/}; l=${l#system-}; echo \"${l%-link}\"\n"
	"}\n"
	"notify() {\n"
	"	[ -n \"$notified\" ] && return\n"
	"	notified=1\n"
	"	{ echo \"$1\" >&3; } 2>/dev/null\n"
	"	exec 3>&-\n"
	"}\n"
	"finish() {\n"
	"	log \"end: $1${2:+: $2}\"\n"
	"	state phase=done \"result=$1\" \"gen=$new\" \"prev=$prev\" \"path=$target\" \"reason=${2:-}\"\n"
	"	rm -rf lock\n"
	"	notify done\n"
	"	exit 0\n"
	"}\n"
	/*
	 * switch-to-configuration in its own process group, waited for (no
	 * polling); a timer in another process group ends it after LIMIT.
	 */
	"activate() {\n"
	"	rm -f timedout\n"
	"	log \"activating $1 ($2)\"\n"
	"	setsid \"$1/bin/switch-to-configuration\" \"$2\" </dev/null >> activation.log 2>&1 3>&- &\n"
	"	apid=$!\n"
	"	setsid sh -c 'sleep \"$1\"; : > timedout; kill -TERM -\"$2\" \"$2\";"
	" sleep 2; kill -KILL -\"$2\" \"$2\"' sh \"$limit\" \"$apid\""
	" </dev/null >/dev/null 2>&1 3>&- &\n"
	"	tpid=$!\n"
	"	wait \"$apid\"\n"
	"	rc=$?\n"
	"	kill -TERM -\"$tpid\" \"$tpid\" 2>/dev/null\n"
	"	wait \"$tpid\" 2>/dev/null\n"
	"	if [ -e timedout ]; then rm -f timedout; return 124; fi\n"
	"	return $rc\n"
	"}\n"
	/* back to what ran before this run; sets $result */
	"restore() {\n"
	"	log \"restoring: $1\"\n"
	"	result=failed\n"
	"	case $goal in\n"
	"	switch|boot)\n"
	"		if [ \"$prev\" -gt 0 ] && [ \"$prev\" != \"$new\" ] && [ -n \"$prevpath\" ]; then\n"
	"			nix-env -p \"$profile\" --switch-generation \"$prev\" >> activation.log 2>&1\n"
	"			activate \"$prevpath\" \"$goal\" && result=rolled-back\n"
	"			if [ \"$delete\" = 1 ] && [ \"$new\" -gt 0 ]; then\n"
	"				nix-env -p \"$profile\" --delete-generations \"$new\" >> activation.log 2>&1\n"
	"			fi\n"
	"		fi ;;\n"
	"	test)\n"
	"		if [ -n \"$running\" ] && [ \"$running\" != \"$target\" ]; then\n"
	"			activate \"$running\" test && result=rolled-back\n"
	"		fi ;;\n"
	"	esac\n"
	"}\n"
	"prev=$(gen_of)\n"
	"prevpath= running=\n"
	"[ -e \"$profile\" ] && prevpath=$(readlink -f \"$profile\")\n"
	"[ -e /run/current-system ] && running=$(readlink -f /run/current-system)\n"
	"new=$prev target=\n"
	"case $mode in\n"
	"path)\n"
	"	target=$value\n"
	"	case $goal in switch|boot)\n"
	"		nix-env -p \"$profile\" --set \"$target\" >> activation.log 2>&1 ||"
	" finish failed \"nix-env --set failed\"\n"
	"		new=$(gen_of) ;;\n"
	"	esac ;;\n"
	"gen)\n"
	"	target=$(readlink -f \"$profile-$value-link\" 2>/dev/null)\n"
	"	[ -n \"$target\" ] && [ -e \"$target\" ] || finish failed \"no generation $value\"\n"
	"	case $goal in switch|boot)\n"
	"		nix-env -p \"$profile\" --switch-generation \"$value\" >> activation.log 2>&1 ||"
	" finish failed \"nix-env --switch-generation failed\"\n"
	"		new=$value ;;\n"
	"	esac ;;\n"
	"esac\n"
	"state phase=activating \"gen=$new\" \"prev=$prev\" \"path=$target\"\n"
	"activate \"$target\" \"$goal\"\n"
	"rc=$?\n"
	"if [ $rc -ne 0 ]; then\n"
	"	if [ $rc -eq 124 ]; then why=\"activation timed out after ${limit}s\";"
	" else why=\"switch-to-configuration $goal exited with status $rc\"; fi\n"
	"	[ \"$auto\" = 1 ] || finish failed \"$why\"\n"
	"	restore \"$why\"\n"
	"	finish \"$result\" \"$why\"\n"
	"fi\n"
	"case $goal in switch|test)\n"
	"	if [ \"$confirm\" -gt 0 ]; then\n"
	"		: > \"canary.$runid\"\n"
	"		state phase=awaiting-confirm \"gen=$new\" \"prev=$prev\" \"path=$target\"\n"
	"		notify awaiting-confirm\n"
	"		ticks=0\n"
	"		while [ -e \"canary.$runid\" ] && [ $ticks -lt $((confirm * 20)) ]; do\n"
	"			sleep 0.05; ticks=$((ticks + 1))\n"
	"		done\n"
	"		if [ -e \"canary.$runid\" ]; then\n"
	"			rm -f \"canary.$runid\"\n"
	"			why=\"not confirmed within ${confirm}s (magic rollback)\"\n"
	"			restore \"$why\"\n"
	"			finish \"$result\" \"$why\"\n"
	"		fi\n"
	"	fi ;;\n"
	"esac\n"
	"finish ok\n";

const char *host_watchdog_script(void)
{
	return watchdog_script;
}

/* Reads the state's phase into $p; shared by the waiting commands. */
#define PHASE_OF_STATE                                                                         \
	"p=; while IFS= read -r l; do case $l in phase=*) p=${l#phase=};; esac; done "      \
	"< /run/constel/state; "

char *host_cmd_start(const struct host_activation *a)
{
	char *value = a->path ? shell_quote(a->path) : xasprintf("%ld", a->generation);
	char *runid = shell_quote(a->runid), *goal = shell_quote(a->goal);
	char *cmd;

	cmd = xasprintf(
		"umask 022; mkdir -p /run/constel && cd /run/constel || exit 70; "
		"if ! mkdir lock 2>/dev/null; then "
		"p=$(cat lock/pid 2>/dev/null); "
		"if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then echo locked=$p; exit 75; fi; "
		"rm -rf lock; mkdir lock || exit 75; fi; "
		"cat > watchdog.sh || exit 70; "
		"printf 'run=%%s\\nphase=starting\\n' %s > state; rm -f canary.* events; "
		"mkfifo events && exec 3<>events 4<events || exit 70; "
		"setsid sh watchdog.sh %s %s %s %s %ld %ld %d %d </dev/null >/dev/null 2>&1 4<&- & "
		"echo $! > lock/pid; echo started=$!; "
		/* only the watchdog writes now: its milestone, or EOF if it died */
		"exec 3>&-; rm -f events; read -r milestone <&4; exec 4<&-; cat state",
		runid, runid, a->path ? "path" : "gen", value, goal,
		strcmp(a->goal, "switch") && strcmp(a->goal, "test") ? 0 : a->confirm_timeout,
		a->activation_timeout, a->auto_rollback, a->delete_failed);
	free(value);
	free(runid);
	free(goal);
	return cmd;
}

char *host_cmd_wait(const char *phase, long seconds)
{
	return xasprintf("i=0; while [ $i -lt %ld ]; do " PHASE_OF_STATE
			 "case $p in %s|starting) ;; *) break;; esac; sleep 0.05; i=$((i + 1)); "
			 "done; cat /run/constel/state",
		seconds * 20, phase);
}

char *host_cmd_confirm(const char *runid, long seconds)
{
	char *q = shell_quote(runid);
	char *cmd = xasprintf("rm -f /run/constel/canary.%s || exit 1; i=0; "
			      "while [ $i -lt %ld ]; do " PHASE_OF_STATE
			      "case $p in done) break;; esac; sleep 0.05; i=$((i + 1)); done; "
			      "cat /run/constel/state",
		q, seconds * 20);

	free(q);
	return cmd;
}

const char *host_cmd_query(void)
{
	return "p=/nix/var/nix/profiles/system; l=$(readlink $p 2>/dev/null); l=${l##*/}; "
	       "l=${l#system-}; echo \"gen=${l%-link}\"; "
	       "[ -e $p ] && echo \"profile=$(readlink -f $p)\"; "
	       "[ -e /run/current-system ] && "
	       "echo \"current=$(readlink -f /run/current-system)\"; "
	       "if [ -d /run/constel/lock ]; then echo \"locked=$(cat /run/constel/lock/pid "
	       "2>/dev/null)\"; fi; "
	       /* the link's own time (not its target's, which the store sets to 1970) */
	       "echo \"switched=$(stat -c %y /run/current-system 2>/dev/null | cut -c1-19)\"; "
	       "[ -e /var/lib/constel/deployment.json ] && echo \"record_revision=$(sed -n "
	       "'s/.*\"revision\":\"\\([^\"]*\\)\".*/\\1/p' /var/lib/constel/deployment.json)\"; "
	       "true";
}

const char *host_cmd_generations(void)
{
	return "for l in /nix/var/nix/profiles/system-*-link; do [ -e \"$l\" ] || continue; "
	       "g=${l##*/system-}; echo \"gen=${g%-link} path=$(readlink -f $l)\"; done";
}

void host_ssh_target(struct ssh_target *t, const struct inv_host *h, const char *ssh_config,
	long connect_timeout, int op_timeout)
{
	memset(t, 0, sizeof(*t));
	t->name = h->name;
	/* the address defaults to the name: then let the ssh config's HostName decide */
	t->address = strcmp(h->address, h->name) ? h->address : NULL;
	t->user = h->user;
	t->port = h->port;
	t->ssh_config = ssh_config;
	t->connect_timeout = (int)connect_timeout;
	t->op_timeout = op_timeout;
}

char *host_get(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *found = NULL;
	size_t flen = 0;

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		/* a line holds one key=value, or several separated by spaces (generations) */
		if (len > klen && !strncmp(line, key, klen) && line[klen] == '=') {
			found = line + klen + 1;
			flen = len - klen - 1;
		}
		line = end ? end + 1 : NULL;
	}
	return found ? xstrndup(found, flen) : NULL;
}

long host_get_long(const char *text, const char *key, long dflt)
{
	char *v = host_get(text, key);
	long n;

	if (!v || parse_long(v, -1, 1L << 40, &n) < 0)
		n = dflt;
	free(v);
	return n;
}
