/*
 * deploy/activate.c: one activation on a host, followed to its end. The
 * watchdog (deploy/sh/watchdog.sh) does the work on the host; this side
 * starts it, confirms the new system over a new session, reconnects when
 * the session is lost, and believes only what it can check of the answer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deploy/runner_int.h"

/*
 * A finished run's state, checked before it is believed: it belongs to this
 * run, its generations are numbers, and the system it names is the one
 * constel sent (what is reported is always what constel sent).
 */
static void apply_state(
	struct hostctx *c, const struct host_activation *a, const char *state, bool rollback_op)
{
	char *result = host_get(state, "result");
	char *reason = answer_text(state, "reason");
	char *path = host_get(state, "path");
	char *running = answer_text(state, "running");
	long gen = host_get_long(state, "gen", -1), prev = host_get_long(state, "prev", -1);

	log_answer(c, "state", state);
	if (!state || !host_state_of_run(state, a->runid)) {
		fail(c, HOST_FAILED, "the host's answer belongs to another run");
		goto out;
	}
	if (gen < 0 || prev < 0) {
		fail(c, HOST_FAILED, "the host's answer has no valid generation");
		goto out;
	}
	if (a->mode == HOST_ACTIVATE_PATH && (!path || strcmp(path, a->path))) {
		fail(c, HOST_FAILED, "the host reports another system than the one constel sent");
		goto out;
	}
	c->res->generation = gen;
	if (a->mode == HOST_ACTIVATE_PATH)
		c->res->prev_generation = prev; /* after a repair, what the run found */
	if (result && !strcmp(result, "repaired")) {
		c->res->status = HOST_DEPLOYED;
		c->res->did = "repaired";
		free(c->res->path);
		c->res->path = running && host_is_store_path(running) ? xstrdup(running) : NULL;
	} else if (result && !strcmp(result, "ok")) {
		c->res->status = HOST_DEPLOYED;
		c->res->changed = !rollback_op && strcmp(a->goal, "dry-activate");
	} else if (result && !strcmp(result, "rolled-back")) {
		char *profile = host_get(state, "profile"), *ran = host_get(state, "running");

		if (profile && ran && host_is_store_path(profile) && host_is_store_path(ran) &&
			strcmp(profile, ran))
			/* a generation staged with `boot` stays staged: say what runs */
			fail(c, HOST_ROLLED_BACK,
				"%s; restored: %s runs again, the profile is at generation %ld "
				"(%s, for the next boot) again",
				reason ? reason : "?", ran, prev, profile);
		else
			fail(c, HOST_ROLLED_BACK, "%s; restored generation %ld",
				reason ? reason : "?", prev);
		free(profile);
		free(ran);
		c->res->generation = prev;
	} else if (result && !strcmp(result, "restore-failed")) {
		fail(c, HOST_RESTORE_FAILED,
			"%s; restoring the previous system failed too: the host runs %s and its "
			"profile is at generation %ld (see its log)",
			reason ? reason : "?", running && *running ? running : "nothing", gen);
	} else {
		fail(c, HOST_FAILED, "%s", reason && *reason ? reason : "activation failed");
	}
out:
	free(result);
	free(reason);
	free(path);
	free(running);
}

/* How long a run's watchdog can still be busy after it started (seconds). */
static long watchdog_span(const struct host_activation *a)
{
	/* the activation, the confirmation, a restore's activations, and slack */
	return 3 * a->activation_timeout + a->confirm_timeout + 30;
}

/*
 * What the host runs now, as a clause of a message (caller frees): the
 * profile's generation and system, and the running system, from a fresh
 * query over `io`; what does not look like what it should is not shown.
 */
static char *host_now(struct hostctx *c, struct host_io *io)
{
	char *q = NULL, *profile = NULL, *current = NULL, *text;
	long gen;

	if (hexec(c, io, host_cmd_query(), NULL, &q, QUERY_TIMEOUT, 0) != 0) {
		free(q);
		return xstrdup("what it runs now is unknown (it did not answer)");
	}
	log_answer(c, "host reports", q);
	profile = host_get(q, "profile");
	current = host_get(q, "current");
	gen = host_get_long(q, "gen", 0);
	if (profile && !host_is_store_path(profile)) {
		free(profile);
		profile = NULL;
	}
	if (current && !host_is_store_path(current)) {
		free(current);
		current = NULL;
	}
	if (gen > 0)
		text = xasprintf("its profile is at generation %ld (%s), %s runs", gen,
			profile ? profile : "an unknown system", current ? current : "nothing");
	else
		text = xasprintf(
			"its profile has no generation, %s runs", current ? current : "nothing");
	free(q);
	free(profile);
	free(current);
	return text;
}

/*
 * Run `a->runid` did not finish on the host (wait.sh exit 4: its watchdog
 * died, or its state is gone while its pending record remains): the host
 * is failed with what it runs now, and the next deploy repairs it.
 */
static void fail_interrupted(
	struct hostctx *c, struct host_io *io, const struct host_activation *a, const char *answer)
{
	char *why = answer_text(answer, "why"), *now = host_now(c, io);

	log_answer(c, "state", answer);
	fail(c, HOST_FAILED,
		"run %s was interrupted on the host (%s): %s; the next deploy repairs it "
		"from its pending record",
		a->runid, why && *why ? why : "its watchdog is gone", now);
	free(why);
	free(now);
}

/*
 * After the host's session was lost: reconnect and read how the run ended,
 * bounded by what the watchdog can still be doing, counted from `started`
 * (when the start command was sent). The message says what is known when
 * the host cannot be reached again.
 */
static void recover_state(
	struct hostctx *c, const struct host_activation *a, bool rollback_op, double started)
{
	bool confirms =
		a->confirm_timeout > 0 && (!strcmp(a->goal, "switch") || !strcmp(a->goal, "test"));
	double deadline = started + (double)watchdog_span(a);
	char *cmd = host_cmd_wait(a->pkg, a->runid, 5, false);
	bool reached = false;

	step(c, "recover", "connection lost; asking the host how run %s ended", a->runid);
	do {
		struct host_io io = {0};
		char *state = NULL;
		int rc = -1;

		if (open_session(c, &io) == 0) {
			reached = true;
			rc = hexec(c, &io, cmd, NULL, &state, 30, HEXEC_ROOT);
		}
		if (rc == 3) {
			/* no state and no pending record of this run on the host */
			char *now = host_now(c, &io);

			fail(c, HOST_FAILED,
				"lost the connection, and the host has no state of run %s: it did "
				"not start there, or the host restarted since; %s",
				a->runid, now);
			free(now);
		} else if (rc == 4) {
			fail_interrupted(c, &io, a, state);
		} else if (rc == 0 && host_state_is(state, "done")) {
			log_answer_output(c, state);
			apply_state(c, a, state, rollback_op);
		}
		if (rc == 3 || rc == 4 || (rc == 0 && host_state_is(state, "done"))) {
			take_session(&c->io, &io);
			free(state);
			free(cmd);
			return;
		}
		free(state);
		if (io.ops)
			host_io_close(&io);
		if (now_seconds() < deadline)
			sleep(1);
	} while (now_seconds() < deadline && !atomic_load(&c->r->cancel));
	free(cmd);
	if (atomic_load(&c->r->cancel))
		fail(c, HOST_FAILED,
			"interrupted while the host's activation ran; its watchdog "
			"finishes it (and restores the host if it fails)");
	else if (!reached && confirms)
		fail(c, HOST_FAILED,
			"lost the connection during the activation and could not reconnect "
			"within %lds of its start; unconfirmed, the new system is undone by "
			"the host's watchdog (magic rollback)",
			watchdog_span(a));
	else if (!reached)
		fail(c, HOST_FAILED,
			"lost the connection during the activation and could not reconnect "
			"within %lds of its start; no confirmation was asked (no magic "
			"rollback), so the host keeps what it switched to: its state is "
			"unknown",
			watchdog_span(a));
	else
		fail(c, HOST_FAILED, "the host's watchdog did not finish run %s within %lds",
			a->runid, watchdog_span(a));
}

/*
 * The watchdog answered without a milestone: it died (SIGKILL?) or cannot
 * write its state. Asks once more how the run ended; *answer is replaced
 * by the final state, or the host failed (-1).
 */
static int follow_unmilestoned(struct hostctx *c, const struct host_activation *a, char **answer)
{
	char *milestone = host_get(*answer, "milestone"), *wait, *now;
	bool unrecorded = milestone && !strcmp(milestone, "unrecorded");
	int rc;

	free(milestone);
	free(*answer);
	*answer = NULL;
	wait = host_cmd_wait(a->pkg, a->runid, 10, false);
	rc = hexec(c, &c->io, wait, NULL, answer, 30, HEXEC_ROOT);
	free(wait);
	if (rc == 4 && !unrecorded) {
		fail_interrupted(c, &c->io, a, *answer);
		return -1;
	}
	if (rc == 0 && host_state_is(*answer, "done"))
		return 0;
	now = host_now(c, &c->io);
	fail(c, HOST_FAILED,
		unrecorded ? "the host's watchdog could not write the state of run %s (is /run "
			     "full?): %s; a pending record left is repaired by the next deploy"
			   : "the host's watchdog ended without finishing run %s: %s; a pending "
			     "record left is repaired by the next deploy",
		a->runid, now);
	free(now);
	return -1;
}

/*
 * The activation awaits its confirmation: over a NEW session, which proves
 * the new system still lets constel in, remove the canary and wait for the
 * end. 0 with *answer the final state; 1 when the host must be asked again
 * (recover_state); -1 when the host failed.
 */
static int confirm(struct hostctx *c, const struct host_activation *a, char **answer)
{
	double deadline = now_seconds() + (double)a->confirm_timeout;
	char *cmd = host_cmd_wait(a->pkg, a->runid, watchdog_span(a), true);
	struct host_io fresh = {0};
	int rc = -1, ret = 1;

	log_answer(c, "state", *answer);
	free(*answer);
	*answer = NULL;
	step(c, "confirm", "confirming over a new session");
	while (now_seconds() < deadline && open_session(c, &fresh) < 0)
		usleep(500 * 1000);
	if (host_io_connected(&fresh))
		rc = hexec(c, &fresh, cmd, NULL, answer, watchdog_span(a), HEXEC_ROOT);
	free(cmd);
	if (rc == 0 && host_state_is(*answer, "done")) {
		/* the new session is the one that proved itself: keep it */
		take_session(&c->io, &fresh);
		log_answer_output(c, *answer);
		ret = 0;
	} else if (rc == 4) {
		fail_interrupted(c, &fresh, a, *answer);
		ret = -1;
	} else if (rc == 3) {
		char *now = host_now(c, &fresh);

		fail(c, HOST_FAILED, "not confirmed: the host's state is not run %s's: %s",
			a->runid, now);
		free(now);
		ret = -1;
	}
	if (fresh.ops)
		host_io_close(&fresh);
	return ret;
}

int activate(struct hostctx *c, const struct host_activation *a, bool rollback_op)
{
	char *cmd = host_cmd_start(a), *answer = NULL;
	double started = now_seconds();
	int rc;

	if (a->mode == HOST_ACTIVATE_PATH)
		step(c, "activate", "activating %s (%s)", a->path, a->goal);
	/* returns at the watchdog's first milestone, with its state */
	/* the watchdog travels on stdin, unless the host has it in constel-host */
	rc = hexec(c, &c->io, cmd, a->pkg ? NULL : host_watchdog_script(), &answer,
		watchdog_span(a), HEXEC_ROOT);
	free(cmd);
	if (rc < 0) {
		recover_state(c, a, rollback_op, started);
		goto out;
	}
	log_answer_output(c, answer);
	if (rc != 0) {
		start_refused(c, rc, answer);
		goto out;
	}
	if (!host_state_of_run(answer, a->runid)) {
		fail(c, HOST_FAILED, "the host's answer belongs to another run");
		goto out;
	}
	if (!host_state_is(answer, "awaiting-confirm") && !host_state_is(answer, "done") &&
		follow_unmilestoned(c, a, &answer) < 0)
		goto out;
	if (host_state_is(answer, "awaiting-confirm")) {
		rc = confirm(c, a, &answer);
		if (rc > 0)
			recover_state(c, a, rollback_op, started);
		if (rc != 0)
			goto out;
	}
	apply_state(c, a, answer, rollback_op);
out:
	free(answer);
	return c->res->status == HOST_DEPLOYED ? 0 : -1;
}

/*
 * After a failed check of the host (health gate): back to how the host was
 * before the run, the profile at its generation then and the system that
 * ran then running again; the new generation is deleted once that worked.
 */
int restore_host(struct hostctx *c, const char *why)
{
	struct host_activation a = {0};
	char *runid = xasprintf("%s-restore", c->runid), *saved = xstrdup(why);
	char *previous = c->res->previous ? xstrdup(c->res->previous) : NULL;

	a.runid = runid;
	a.mode = HOST_ACTIVATE_RESTORE;
	a.generation = c->res->prev_generation;
	a.running = previous;
	a.goal = c->goal;
	a.activation_timeout = c->r->opts.activation_timeout;
	a.auto_rollback = true;
	a.delete_failed = c->r->opts.op == RUNNER_DEPLOY;
	a.pkg = c->pkg;
	step(c, "restore", "restoring the host as it was before the run: %s", why);
	activate(c, &a, true);
	if (c->res->status == HOST_ROLLED_BACK) {
		/* its reason is the restore's own: say why it happened */
		fail(c, HOST_ROLLED_BACK, "%s; restored generation %ld", saved,
			c->res->prev_generation);
		c->res->generation = c->res->prev_generation;
		c->res->changed = false;
	} else if (c->res->status != HOST_RESTORE_FAILED) {
		fail(c, HOST_RESTORE_FAILED, "%s; restoring generation %ld failed too: %s", saved,
			c->res->prev_generation, c->res->error ? c->res->error : "?");
	}
	free(saved);
	free(runid);
	free(previous);
	return -1;
}
