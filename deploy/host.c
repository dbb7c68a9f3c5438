#include "deploy/host.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/host_sh.h"

/* `sh -c SCRIPT NAME ARG...` as one command line for the host's shell. */
char *host_script(const char *script, const char *name, const char *const *args, size_t nargs)
{
	struct buf b = BUF_INIT(0);
	char *q = shell_quote(script);

	buf_printf(&b, "sh -c %s constel-%s", q, name);
	free(q);
	for (size_t i = 0; i < nargs; i++) {
		q = shell_quote(args[i]);
		buf_printf(&b, " %s", q);
		free(q);
	}
	return buf_detach(&b);
}

char *host_cmd_root(const char *pkg, const char *script, const char *name,
	const char *const *args, size_t nargs)
{
	struct buf b = BUF_INIT(0);

	if (!pkg)
		return host_script(script, name, args, nargs);
	buf_printf(&b, "%s/bin/constel-host %s", pkg, name);
	for (size_t i = 0; i < nargs; i++) {
		char *q = shell_quote(args[i]);

		buf_printf(&b, " %s", q);
		free(q);
	}
	return buf_detach(&b);
}

const char *host_watchdog_script(void)
{
	return host_sh_watchdog;
}

static const char *mode_name(const struct host_activation *a)
{
	switch (a->mode) {
	case HOST_ACTIVATE_PATH:
		return "path";
	case HOST_ACTIVATE_GENERATION:
		return "gen";
	case HOST_ACTIVATE_RESTORE:
		return "restore";
	case HOST_ACTIVATE_REPAIR:
		return "repair";
	}
	return "?";
}

char *host_cmd_start(const struct host_activation *a)
{
	char value[32], confirm[32], limit[32];
	const char *args[9];
	bool confirms = !strcmp(a->goal, "switch") || !strcmp(a->goal, "test");

	snprintf(value, sizeof(value), "%ld", a->generation);
	snprintf(confirm, sizeof(confirm), "%ld", confirms ? a->confirm_timeout : 0);
	snprintf(limit, sizeof(limit), "%ld", a->activation_timeout);
	args[0] = a->runid;
	args[1] = mode_name(a);
	args[2] = a->mode == HOST_ACTIVATE_PATH ? a->path : value;
	args[3] = a->goal;
	args[4] = confirm;
	args[5] = limit;
	args[6] = a->auto_rollback ? "1" : "0";
	args[7] = a->delete_failed ? "1" : "0";
	args[8] = a->running ? a->running : "";
	return host_cmd_root(a->pkg, host_sh_start, "start", args, 9);
}

char *host_cmd_wait(const char *pkg, const char *runid, long seconds, bool confirm)
{
	char secs[32];
	const char *args[3] = {runid, secs, "confirm"};

	snprintf(secs, sizeof(secs), "%ld", seconds);
	return host_cmd_root(pkg, host_sh_wait, "wait", args, confirm ? 3 : 2);
}

char *host_cmd_build(const char *drv)
{
	return host_script(host_sh_build, "build", &drv, 1);
}

/* The fixed commands, made once. */
static pthread_once_t fixed_once = PTHREAD_ONCE_INIT;
static char *query_cmd, *generations_cmd;

static void make_fixed(void)
{
	query_cmd = host_script(host_sh_query, "query", NULL, 0);
	generations_cmd = host_script(host_sh_generations, "generations", NULL, 0);
}

const char *host_cmd_query(void)
{
	pthread_once(&fixed_once, make_fixed);
	return query_cmd;
}

const char *host_cmd_generations(void)
{
	pthread_once(&fixed_once, make_fixed);
	return generations_cmd;
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

		if (len == sizeof(HOST_OUTPUT_MARK) - 1 && !memcmp(line, HOST_OUTPUT_MARK, len))
			break; /* what follows is the activation's output, not answers */
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

bool host_is_store_path(const char *s)
{
	const char *comp;

	if (strncmp(s, "/nix/store/", 11))
		return false;
	/* components of the characters Nix allows in store path names, none empty, . or .. */
	for (comp = s + 11;; comp++) {
		size_t len = strspn(comp, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789+._?=-");

		if (!len || (len == 1 && comp[0] == '.') ||
			(len == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		comp += len;
		if (!*comp)
			return true;
		if (*comp != '/')
			return false;
	}
}

const char *host_answer_output(const char *text)
{
	const char *m = text;

	while (m && (m = strstr(m, HOST_OUTPUT_MARK))) {
		size_t n = sizeof(HOST_OUTPUT_MARK) - 1;

		if ((m == text || m[-1] == '\n') && (m[n] == '\n' || !m[n]))
			return m[n] ? m + n + 1 : m + n;
		m += n;
	}
	return NULL;
}

/* ---- answers of the state and generations ---- */

bool host_state_is(const char *state, const char *phase)
{
	char *p = state ? host_get(state, "phase") : NULL;
	bool yes = p && !strcmp(p, phase);

	free(p);
	return yes;
}

bool host_state_of_run(const char *state, const char *runid)
{
	char *r = state ? host_get(state, "run") : NULL;
	bool yes = r && !strcmp(r, runid);

	free(r);
	return yes;
}

long host_gens_previous(const char *gens, long current)
{
	long best = 0;

	for (const char *line = gens; line && *line;) {
		long g;

		if (sscanf(line, "gen=%ld", &g) == 1 && g < current && g > best)
			best = g;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return best;
}

bool host_gens_has(const char *gens, long gen)
{
	for (const char *line = gens; line && *line;) {
		long g;

		if (sscanf(line, "gen=%ld", &g) == 1 && g == gen)
			return true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

char *host_gens_path(const char *gens, long gen)
{
	char *key = xasprintf("gen=%ld path=", gen), *path = NULL;

	for (const char *line = gens; line && *line && !path;) {
		size_t len = strcspn(line, "\n");

		if (!strncmp(line, key, strlen(key))) {
			path = xstrndup(line + strlen(key), len - strlen(key));
			if (!host_is_store_path(path)) {
				free(path);
				path = NULL;
			}
		}
		line = line[len] ? line + len + 1 : NULL;
	}
	free(key);
	return path;
}
