/*
 * deploy/health.c: the health gate of one host (deploy/health.h says what
 * it checks): every check retried until it passes or health_timeout has
 * passed since the gate began; the first that does not pass fails the
 * gate, named with its last output.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"
#include "deploy/health.h"
#include "deploy/host_sh.h"
#include "deploy/runner_int.h"

/* ---- verdicts on answers (pure) ---- */

/* Whether the space-separated `list` holds the word `w` (of length n). */
static bool has_word(const char *list, const char *w, size_t n)
{
	for (const char *p = list ? list : ""; *p;) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (len == n && !strncmp(p, w, n))
			return true;
		p += len;
	}
	return false;
}

char *health_new_failures(const char *before, const char *after)
{
	struct buf b = BUF_INIT(4096);
	char *out;

	for (const char *p = after ? after : ""; *p;) {
		size_t len;

		p += strspn(p, " ");
		len = strcspn(p, " ");
		if (len && !has_word(before, p, len)) {
			if (b.len)
				buf_add(&b, " ", 1);
			buf_add_sanitized(&b, p, len);
		}
		p += len;
	}
	out = b.len ? xstrdup(b.data) : NULL;
	buf_release(&b);
	return out;
}

int health_units_verdict(const char *before, const char *after, char **why)
{
	char *state = host_get(after, "system_state"), *was = NULL;
	char *failed_before = NULL, *failed_after = NULL, *fresh = NULL, *shown = NULL;
	int ret = 0;

	*why = NULL;
	if (!state)
		goto out; /* no systemctl on the host: nothing to say */
	was = before ? host_get(before, "system_state") : NULL;
	failed_before = before ? host_get(before, "failed_units") : NULL;
	failed_after = host_get(after, "failed_units");
	fresh = health_new_failures(failed_before, failed_after);
	shown = text_sanitize(state);
	if (fresh) {
		*why = xasprintf("unit%s failed since the switch: %s (the system is %s)",
			strchr(fresh, ' ') ? "s" : "", fresh, shown);
		ret = 1;
	} else if (!strcmp(state, "degraded") && !(was && !strcmp(was, "degraded"))) {
		*why = xstrdup("the system is degraded (systemctl is-system-running), and was "
			       "not before");
		ret = 1;
	} else if (!strcmp(state, "starting") || !strcmp(state, "initializing")) {
		*why = xasprintf("the system is still %s", shown);
		ret = 1;
	}
out:
	free(state);
	free(was);
	free(failed_before);
	free(failed_after);
	free(fresh);
	free(shown);
	return ret;
}

bool health_is_degraded(const char *query, char **failed)
{
	char *state = query ? host_get(query, "system_state") : NULL;
	bool degraded = state && !strcmp(state, "degraded");

	if (failed) {
		char *units = degraded ? host_get(query, "failed_units") : NULL;

		*failed = health_new_failures(NULL, units);
		free(units);
	}
	free(state);
	return degraded;
}

/* ---- the checks, on the host ---- */

/*
 * One attempt of a check: 0 passed, else *last (caller frees) says what it
 * saw. `what` is the check's own data.
 */
typedef int (*attempt_fn)(struct hostctx *c, const void *what, char **last);

/* The last lines of what a check printed, made safe, on one line (caller frees). */
static char *tail_of(const char *s, size_t n)
{
	struct buf b = BUF_INIT(64u << 10);
	char *t;

	buf_add_sanitized(&b, s ? s : "", s ? n : 0);
	t = buf_tail_one_line(&b, 3);
	buf_release(&b);
	return t;
}

static int attempt_port(struct hostctx *c, const void *what, char **last)
{
	const struct inv_service *s = what;

	if (host_io_probe(&c->io, s->port, 1000) == 0)
		return 0;
	*last = xasprintf("nothing accepts connections on port %d", s->port);
	return 1;
}

struct units_check {
	const char *before; /* the query before the run */
};

static int attempt_units(struct hostctx *c, const void *what, char **last)
{
	const struct units_check *u = what;
	char *q = NULL;
	int rc = hexec(c, &c->io, host_cmd_query(), NULL, &q, QUERY_TIMEOUT, HEXEC_CANCEL);

	if (rc != 0) {
		*last = rc < 0 ? xasprintf("the host did not answer: %s", error_last())
			       : xasprintf("the query exited %d", rc);
		free(q);
		return 1;
	}
	rc = health_units_verdict(u->before, q, last);
	free(q);
	return rc;
}

static char *http_cmd(const struct inv_service *s)
{
	char port[16];
	const char *args[] = {"http", port, s->health_path};

	snprintf(port, sizeof(port), "%d", s->port);
	return host_script(host_sh_health, "health", args, 3);
}

static int attempt_http(struct hostctx *c, const void *what, char **last)
{
	const struct inv_service *s = what;
	char *cmd = http_cmd(s), *answer = NULL;
	int rc = hexec(c, &c->io, cmd, NULL, &answer, QUERY_TIMEOUT, HEXEC_CANCEL);
	long status = answer ? host_get_long(answer, "status", -1) : -1;
	const char *body = answer ? host_answer_output(answer) : NULL;

	free(cmd);
	if (rc == 0 && status == s->health_status) {
		free(answer);
		return 0;
	}
	if (rc != 0) {
		char *err = answer_text(answer, "error");

		*last = rc < 0 ? xasprintf("the host did not answer: %s", error_last())
			       : xasprintf("%s", err ? err : "the check could not run");
		free(err);
	} else if (status == 0) {
		*last = xasprintf("no HTTP answer on port %d", s->port);
	} else {
		char *t = tail_of(body, body ? strlen(body) : 0);

		*last = xasprintf("answered %ld, not %d%s%s", status, s->health_status,
			*t ? ": " : "", t);
		free(t);
	}
	free(answer);
	return 1;
}

static int attempt_command(struct hostctx *c, const void *what, char **last)
{
	char *cmd = host_script(what, "check", NULL, 0), *line, *answer = NULL;
	int rc;

	line = xasprintf("%s 2>&1", cmd);
	rc = hexec(c, &c->io, line, NULL, &answer, QUERY_TIMEOUT, HEXEC_CANCEL);
	free(cmd);
	free(line);
	if (rc != 0) {
		char *t = tail_of(answer, answer ? strlen(answer) : 0);

		*last = rc < 0 ? xasprintf("the host did not answer: %s", error_last())
			       : xasprintf("exit %d%s%s", rc, *t ? ": " : "", t);
		free(t);
	}
	free(answer);
	return rc != 0;
}

static int attempt_local(struct hostctx *c, const void *what, char **last)
{
	/* the host's name and address are $1 and $2 of the command */
	const char *argv[] = {"sh", "-c", what, "constel-local-check", c->host->name,
		c->host->address, NULL};
	struct buf out = BUF_INIT(64u << 10), err = BUF_INIT(64u << 10);
	struct proc_cmd cmd = {.argv = argv, .out = &out, .err = &err, .timeout = QUERY_TIMEOUT,
		.any_status = true};
	int status, rc;

	rc = proc_cmd_run(&cmd);
	status = cmd.exit_status;
	if (rc < 0 || status != 0) {
		const struct buf *b = err.len ? &err : &out;
		char *t = tail_of(b->data, b->len);

		*last = rc < 0 ? xasprintf("%s", error_last())
			       : xasprintf("exit %d%s%s", status, *t ? ": " : "", t);
		free(t);
	}
	buf_release(&out);
	buf_release(&err);
	return rc < 0 || status != 0;
}

/*
 * Runs one check until it passes or the deadline; 0, or -1 with *why
 * naming the check and its last output.
 */
static int retry(struct hostctx *c, double deadline, attempt_fn fn, const void *what,
	const char *name, char **why)
{
	char *last = NULL;

	for (;;) {
		free(last);
		last = NULL;
		if (fn(c, what, &last) == 0) {
			hlog(c, "health: %s passes", name);
			return 0;
		}
		if (now_seconds() >= deadline || atomic_load(&c->r->cancel))
			break;
		usleep(500 * 1000);
	}
	*why = xasprintf("health gate: %s did not pass within %lds: %s", name,
		host_health_timeout(c), last ? last : "?");
	free(last);
	return -1;
}

/* Each command of `cmds` (a check of `kind`) until it passes; as retry(). */
static int retry_commands(struct hostctx *c, double deadline, const struct strvec *cmds,
	attempt_fn fn, const char *kind, char **why)
{
	int ret = 0;

	for (size_t i = 0; i < cmds->nr && !ret; i++) {
		char *shown = text_sanitize(cmds->v[i]), *name = xasprintf("%s '%s'", kind, shown);

		ret = retry(c, deadline, fn, cmds->v[i], name, why);
		free(name);
		free(shown);
	}
	return ret;
}

/* How many checks the gate of host h makes (0: no gate). */
static size_t count_checks(const struct inv_host *h)
{
	size_t n = h->nservices + h->checks.nr + h->local_checks.nr;

	for (size_t i = 0; i < h->nservices; i++)
		n += h->services[i].health_path != NULL;
	return n;
}

int health_run(struct hostctx *c, const char *before, char **why)
{
	const struct inv_host *h = c->host;
	double deadline = now_seconds() + (double)host_health_timeout(c);
	struct units_check units = {before};
	size_t n = count_checks(h);
	char *name;
	int ret = 0;

	*why = NULL;
	if (host_health_timeout(c) <= 0)
		return 0;
	step(c, "health", "checking the host's health (%zu check%s and its units)", n,
		n == 1 ? "" : "s");
	for (size_t i = 0; i < h->nservices && !ret; i++) {
		name = xasprintf("service '%s' (port %d)", h->services[i].name,
			h->services[i].port);
		ret = retry(c, deadline, attempt_port, &h->services[i], name, why);
		free(name);
	}
	if (!ret)
		ret = retry(c, deadline, attempt_units, &units, "units", why);
	for (size_t i = 0; i < h->nservices && !ret; i++) {
		const struct inv_service *s = &h->services[i];

		if (!s->health_path)
			continue;
		name = xasprintf("HTTP check of '%s' (GET %s on port %d, expecting %d)", s->name,
			s->health_path, s->port, s->health_status);
		ret = retry(c, deadline, attempt_http, s, name, why);
		free(name);
	}
	if (!ret)
		ret = retry_commands(c, deadline, &h->checks, attempt_command, "check", why);
	if (!ret)
		ret = retry_commands(
			c, deadline, &h->local_checks, attempt_local, "local check", why);
	return ret;
}
