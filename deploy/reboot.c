/*
 * deploy/reboot.c: a host rebooted and waited for, by `deploy --reboot`
 * (goal boot: into the generation just set for the next boot) and by
 * `constel reboot`. The host is told to reboot (deploy/sh/reboot.sh, which
 * answers the boot id it leaves), then asked over new sessions, within
 * reboot_timeout, until it answers with another boot id; what it runs then
 * is checked before the health gate. No magic rollback spans the reboot
 * (docs/architecture.md, "Reboots").
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy/host_sh.h"
#include "deploy/runner_int.h"

/* A boot id as the kernel writes it: hex digits and '-', at most 64. */
static bool boot_id_ok(const char *id)
{
	return id && *id && strlen(id) <= 64 && strspn(id, "0123456789abcdef-") == strlen(id);
}

/*
 * New sessions until the host answers the query with a boot id other than
 * `old`, or `deadline`; 0 with *q its answer and c->io its session.
 */
static int wait_back(struct hostctx *c, const char *old, double deadline, char **q)
{
	while (now_seconds() < deadline && !atomic_load(&c->r->cancel)) {
		struct host_io io = {0};
		char *answer = NULL, *id = NULL;

		if (open_session(c, &io) == 0 &&
			hexec(c, &io, host_cmd_query(), NULL, &answer, QUERY_TIMEOUT, HEXEC_CANCEL) == 0)
			id = host_get(answer, "boot_id");
		if (boot_id_ok(id) && strcmp(id, old)) {
			free(id);
			take_session(&c->io, &io);
			*q = answer;
			return 0;
		}
		free(id);
		free(answer);
		if (io.ops)
			host_io_close(&io);
		if (now_seconds() + 1 < deadline)
			sleep(1);
	}
	return -1;
}

/* The host came back running `current`, not `expect`. */
static int came_back_on_another(struct hostctx *c, const char *current, const char *expect,
	double secs)
{
	const struct runner_opts *o = &c->r->opts;
	char *why = xasprintf("came back from its reboot after %.0fs running %s, not %s", secs,
		current ? current : "nothing", expect);

	/* the boot generation goes back to what it was before the run */
	if (o->op == RUNNER_DEPLOY && c->res->prev_generation > 0 && o->auto_rollback)
		restore_host(c, why);
	else
		fail(c, HOST_FAILED, "%s", why);
	free(why);
	return -1;
}

int reboot_and_wait(struct hostctx *c, const char *expect)
{
	long timeout = c->r->opts.reboot_timeout;
	char *cmd = host_cmd_root(c->pkg, host_sh_reboot, "reboot", NULL, 0), *answer = NULL;
	char *old = NULL, *q = NULL, *current = NULL, *profile = NULL, *shown = NULL;
	double started;
	int ret = -1, rc;

	if (c->host->local) {
		fail(c, HOST_FAILED,
			"constel runs on this host and cannot wait for its own reboot: its "
			"profile is at generation %ld, set for the next boot; reboot it yourself",
			c->res->generation);
		goto out;
	}
	step(c, "reboot", "rebooting; waiting up to %lds for the host to come back", timeout);
	rc = hexec(c, &c->io, cmd, NULL, &answer, QUERY_TIMEOUT, HEXEC_ROOT);
	old = answer ? host_get(answer, "boot_id") : NULL;
	if (rc != 0 || !boot_id_ok(old)) {
		char *err = answer_text(answer, "error");

		fail(c, HOST_FAILED, "could not reboot the host: %s",
			err ? err : rc < 0 ? error_last() : "it gave no boot id");
		free(err);
		goto out;
	}
	started = now_seconds();
	host_io_close(&c->io);
	if (wait_back(c, old, started + (double)timeout, &q) < 0) {
		fail(c, HOST_FAILED,
			"%s within %lds of its reboot (boot %s was the last seen); nothing was "
			"undone: its profile is at generation %ld, set for boot",
			atomic_load(&c->r->cancel) ? "interrupted while waiting for the host"
						   : "the host did not come back",
			timeout, old, c->res->generation);
		goto out;
	}
	log_answer(c, "host reports after the reboot", q);
	current = host_get(q, "current");
	profile = host_get(q, "profile");
	if (!expect)
		expect = profile && host_is_store_path(profile) ? profile : NULL;
	shown = text_sanitize(current);
	if (!expect || !current || !host_is_store_path(current) || strcmp(current, expect)) {
		came_back_on_another(c, shown, expect ? expect : "what its profile points at",
			now_seconds() - started);
		goto out;
	}
	if (!c->res->path)
		c->res->path = xstrdup(current);
	step(c, "reboot", "back after %.1fs with a new boot id, running %s",
		now_seconds() - started, current);
	/* the new system runs now: a restore switches back to the old one */
	c->goal = "switch";
	ret = 0;
out:
	free(cmd);
	free(answer);
	free(old);
	free(q);
	free(current);
	free(profile);
	free(shown);
	return ret;
}

void steps_reboot_host(struct hostctx *c)
{
	char *why = NULL;

	if (reboot_and_wait(c, NULL) < 0)
		return;
	if (health_run(c, c->query, &why) < 0) {
		fail(c, HOST_FAILED, "%s", why);
		free(why);
		return;
	}
	c->res->status = HOST_DEPLOYED;
	step(c, "done", "rebooted; running %s", c->res->path ? c->res->path : "its system");
}
