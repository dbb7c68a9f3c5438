#include "deploy/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "deploy/host.h"
#include "deploy/host_io.h"
#include "deploy/record.h"
#include "transport/transport.h"

/* Remote answers are small; anything bigger is cut (and says so). */
#define ANSWER_MAX	 (256u << 10)
#define CLOSURE_LIST_MAX (16u << 20)
#define SSH_OP_TIMEOUT	 20
/* Wall-clock limits of the short remote commands (seconds). */
#define QUERY_TIMEOUT 30

/* One host being worked on by one worker. */
struct hostctx {
	struct runner *r;
	size_t h;
	const struct inv_host *host;
	struct host_result *res;
	FILE *log;
	struct host_io io; /* the host: over SSH, or the machine constel runs on */
	const char *goal;
	char *runid;
	bool copy_told; /* the copy's first progress said how many paths go */
};

const char *host_status_name(enum host_status s)
{
	static const char *const names[HOST_NSTATUS] = {"pending", "deployed", "unchanged",
		"failed", "rolled-back", "skipped", "restore-failed"};

	return names[s];
}

/* ---- events and logs ---- */

static void push_event(struct runner *r, size_t h, char *text)
{
	struct runner_event *e;

	xgrow((void **)&r->events, &r->alloc_events, r->nevents + 1, sizeof(*r->events));
	e = &r->events[r->nevents++];
	e->host = h;
	e->at = now_seconds() - r->t0;
	e->text = text;
	pthread_cond_broadcast(&r->events_cond);
}

__attribute__((format(printf, 2, 3))) static void hlog(struct hostctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->log)
		return;
	fprintf(c->log, "[%7.2f] ", now_seconds() - c->r->t0);
	va_start(ap, fmt);
	vfprintf(c->log, fmt, ap);
	va_end(ap);
	fputc('\n', c->log);
	fflush(c->log);
}

/* A step begins: the phase is what the live view and the report show. */
__attribute__((format(printf, 3, 4))) static void step(
	struct hostctx *c, const char *phase, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	hlog(c, "%s", text);
	pthread_mutex_lock(&c->r->lock);
	c->res->phase = phase;
	push_event(c->r, c->h, text);
	pthread_mutex_unlock(&c->r->lock);
}

static void log_output(struct hostctx *c, const struct buf *b, const char *what)
{
	if (!c->log || !b->len)
		return;
	fprintf(c->log, "--- %s ---\n%s%s", what, b->data, b->data[b->len - 1] == '\n' ? "" : "\n");
	if (b->truncated)
		fprintf(c->log, "--- (%s truncated) ---\n", what);
	fflush(c->log);
}

static int fail(struct hostctx *c, enum host_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct hostctx *c, enum host_status status, const char *fmt, ...)
{
	va_list ap;

	free(c->res->error);
	va_start(ap, fmt);
	c->res->error = xvasprintf(fmt, ap);
	va_end(ap);
	c->res->status = status;
	hlog(c, "%s: %s", host_status_name(status), c->res->error);
	return -1;
}

/* ---- talking to the host, through its backend (deploy/host_io.h) ---- */

/* A NEW session to the host in *io (a local host needs none: always there). */
static int open_session(struct hostctx *c, struct host_io *io)
{
	struct host_io_config cfg = {
		c->r->opts.ssh_config, c->r->opts.connect_timeout, SSH_OP_TIMEOUT};
	int ret;

	host_io_init(io, c->host, &cfg);
	ret = host_io_open(io);
	if (ret == 0 && io->sessions) {
		c->res->sessions += io->sessions;
		hlog(c, "ssh session %u open", c->res->sessions);
	} else if (ret < 0) {
		hlog(c, "ssh: %s", error_last());
	}
	return ret;
}

/* Closes *to's session and takes over `from`'s (the newer proof of access). */
static void take_session(struct host_io *to, struct host_io *from)
{
	host_io_close(to);
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/*
 * Runs a command on the host; *answer gets its stdout. Returns the exit
 * status (>= 0), or a negative code when the host could not be asked: lost
 * connection, `timeout` seconds passed (0: none), an answer past
 * ANSWER_MAX, or (when `cancellable`) the run was interrupted.
 */
static int hexec(struct hostctx *c, struct host_io *io, const char *cmd, const char *input,
	char **answer, long timeout, bool cancellable)
{
	struct host_exec ex = {input, timeout, cancellable ? &c->r->cancel : NULL};
	struct ssh_exec_result res;
	int ret;

	ssh_exec_result_init(&res, ANSWER_MAX, ANSWER_MAX);
	ret = io->ops ? host_io_exec(io, cmd, &ex, &res)
		      : error_set("'%s': not connected", c->host->name);
	log_output(c, &res.err, "stderr");
	if (ret < 0) {
		hlog(c, "exec failed: %s", error_last());
	} else {
		ret = res.exit_status < 0 ? 255 : res.exit_status;
		if (answer)
			*answer = buf_detach(&res.out);
	}
	ssh_exec_result_release(&res);
	return ret;
}

/* A value of a host's answer made safe to print (caller frees; NULL stays NULL). */
static char *answer_text(const char *answer, const char *key)
{
	char *v = answer ? host_get(answer, key) : NULL;
	char *safe = text_sanitize(v);

	free(v);
	return safe;
}

/* The key=value part of an answer, into the host's log, made safe. */
static void log_answer(struct hostctx *c, const char *what, const char *answer)
{
	const char *end = answer ? host_answer_output(answer) : NULL;
	struct buf b = BUF_INIT(0);

	if (!answer)
		return;
	buf_add_sanitized(&b, answer, end ? (size_t)(end - answer) : strlen(answer));
	hlog(c, "%s:\n%s", what, b.data);
	buf_release(&b);
}

/* The activation's output that came with an answer goes into the host's log. */
static void log_answer_output(struct hostctx *c, const char *answer)
{
	const char *out = answer ? host_answer_output(answer) : NULL;
	struct buf b = BUF_INIT(0);

	if (!out || !*out)
		return;
	buf_add_sanitized(&b, out, strlen(out));
	log_output(c, &b, "activation output (the host's, last 16 KiB)");
	buf_release(&b);
}

/* The closure of a store path, in dependency order. */
static int closure_of(const char *path, struct strvec *paths)
{
	const char *argv[] = {"nix-store", "--query", "--requisites", path, NULL};
	struct buf out = BUF_INIT(CLOSURE_LIST_MAX), err = BUF_INIT(65536);
	int ret = proc_run(argv, &out, &err);

	if (ret < 0)
		ret = error_set(
			"cannot list the closure of '%s': %s", path, buf_tail_lines(&err, 1));
	for (char *line = out.data; ret == 0 && line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (*line)
			strvec_push(paths, line);
		line = nl ? nl + 1 : NULL;
	}
	buf_release(&out);
	buf_release(&err);
	return ret;
}

static void copy_progress(void *data, const struct ssh_copy_stats *s)
{
	struct hostctx *c = data;

	if (!c->copy_told) {
		c->copy_told = true;
		if (s->paths_missing == s->paths_total)
			step(c, "copy", "sending all %zu paths", s->paths_total);
		else if (s->paths_missing)
			step(c, "copy", "sending %zu of %zu paths (the host has the others)",
				s->paths_missing, s->paths_total);
		else
			step(c, "copy", "the host has all %zu paths", s->paths_total);
	}
	pthread_mutex_lock(&c->r->lock);
	c->res->bytes = s->bytes_sent;
	c->res->paths_copied = s->paths_missing;
	pthread_mutex_unlock(&c->r->lock);
}

static int copy_closure(struct hostctx *c, const char *path)
{
	struct strvec paths = STRVEC_INIT;
	struct ssh_copy_stats st = {0};
	int ret;

	if ((ret = closure_of(path, &paths)) < 0) {
		fail(c, HOST_FAILED, "%s", error_last());
		goto out;
	}
	step(c, "copy", "asking which of the closure's %zu paths the host lacks", paths.nr);
	ret = host_io_copy(&c->io, (const char *const *)paths.v, paths.nr, &st, copy_progress, c);
	if (ret < 0) {
		fail(c, HOST_FAILED, "copy failed: %s", error_last());
		goto out;
	}
	copy_progress(c, &st);
	hlog(c, "copied %zu of %zu paths, %llu bytes in %.2fs (%u round trips)", st.paths_missing,
		st.paths_total, (unsigned long long)st.bytes_sent, st.seconds, st.round_trips);
out:
	strvec_release(&paths);
	return ret;
}

/* Runs of spaces become one (Nix indents the builder's lines it quotes). */
static void squeeze_spaces(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++)
		if (*r != ' ' || w == s || w[-1] != ' ')
			*w++ = *r;
	*w = '\0';
}

/* build: target: copy the derivation's closure and realise it on the host. */
static int build_on_target(struct hostctx *c, struct build_item *item, char **out_path)
{
	struct buf log = BUF_INIT(1u << 20);
	char *cmd = NULL, *answer = NULL, *out = NULL, *tail = NULL;
	int ret;

	step(c, "build", "evaluating the derivation to build on the host");
	if (build_eval_drv(item, &log) < 0) {
		log_output(c, &log, "nix eval");
		ret = fail(c, HOST_FAILED, "evaluation failed: %s", error_last());
		goto out;
	}
	if ((ret = copy_closure(c, item->drv_path)) < 0)
		goto out;
	step(c, "build", "building on the host");
	cmd = host_cmd_build(item->drv_path);
	ret = hexec(c, &c->io, cmd, NULL, &answer, 0, true);
	if (ret < 0) {
		ret = fail(c, HOST_FAILED, "build on the host failed: %s", error_last());
		goto out;
	}
	out = answer ? host_get(answer, "out") : NULL;
	if (ret != 0 || !out || !host_is_store_path(out)) {
		const char *said = answer ? host_answer_output(answer) : NULL;
		struct buf b = BUF_INIT(0);

		buf_add_sanitized(&b, said ? said : "", said ? strlen(said) : 0);
		tail = buf_tail_one_line(&b, 3);
		squeeze_spaces(tail);
		ret = fail(c, HOST_FAILED, "build on the host failed (exit %d): %s", ret,
			*tail ? tail : "no output path");
		buf_release(&b);
		goto out;
	}
	*out_path = out;
	out = NULL;
	ret = 0;
out:
	buf_release(&log);
	free(cmd);
	free(answer);
	free(out);
	free(tail);
	return ret;
}

/* ---- activation ---- */

static bool state_is(const char *state, const char *phase)
{
	char *p = state ? host_get(state, "phase") : NULL;
	bool yes = p && !strcmp(p, phase);

	free(p);
	return yes;
}

/* Whether the host's state belongs to this run (not to an earlier deploy). */
static bool state_of_run(const char *state, const char *runid)
{
	char *r = state ? host_get(state, "run") : NULL;
	bool yes = r && !strcmp(r, runid);

	free(r);
	return yes;
}

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
	if (!state || !state_of_run(state, a->runid)) {
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

	if (hexec(c, io, host_cmd_query(), NULL, &q, QUERY_TIMEOUT, false) != 0) {
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
	char *cmd = host_cmd_wait(a->runid, 5, false);
	bool reached = false;

	step(c, "recover", "connection lost; asking the host how run %s ended", a->runid);
	do {
		struct host_io io = {0};
		char *state = NULL;
		int rc = -1;

		if (open_session(c, &io) == 0) {
			reached = true;
			rc = hexec(c, &io, cmd, NULL, &state, 30, false);
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
		} else if (rc == 0 && state_is(state, "done")) {
			log_answer_output(c, state);
			apply_state(c, a, state, rollback_op);
		}
		if (rc == 3 || rc == 4 || (rc == 0 && state_is(state, "done"))) {
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

/* The answer of a refused start: who holds the lock, or which write failed. */
static void start_refused(struct hostctx *c, int rc, const char *answer)
{
	char *pid = answer_text(answer, "holder_pid"), *run = answer_text(answer, "holder_run");
	char *err = answer_text(answer, "error");
	long since = host_get_long(answer, "holder_since", 0);

	if (rc == 75)
		fail(c, HOST_FAILED,
			"another deploy holds the host's lock (watchdog pid %s, run %s, for %lds)",
			pid ? pid : "?", run ? run : "?",
			since > 0 ? (long)time(NULL) - since : 0L);
	else if (err)
		fail(c, HOST_FAILED, "could not start the activation: %s (nothing was changed)",
			err);
	else
		fail(c, HOST_FAILED, "could not start the activation (exit %d)", rc);
	free(pid);
	free(run);
	free(err);
}

/*
 * Starts the watchdog and follows it to its end: activation, then the
 * confirmation over a NEW session that proves the new system still lets
 * constel in.
 */
static int activate(struct hostctx *c, const struct host_activation *a, bool rollback_op)
{
	char *cmd = host_cmd_start(a), *answer = NULL, *wait = NULL;
	struct host_io fresh = {0};
	long span = watchdog_span(a);
	double started = now_seconds();
	int rc;

	if (a->mode == HOST_ACTIVATE_PATH)
		step(c, "activate", "activating %s (%s)", a->path, a->goal);
	/* returns at the watchdog's first milestone, with its state */
	rc = hexec(c, &c->io, cmd, host_watchdog_script(), &answer, span, false);
	if (rc < 0) {
		recover_state(c, a, rollback_op, started);
		goto out;
	}
	log_answer_output(c, answer);
	if (rc != 0) {
		start_refused(c, rc, answer);
		goto out;
	}
	if (!state_of_run(answer, a->runid)) {
		fail(c, HOST_FAILED, "the host's answer belongs to another run");
		goto out;
	}
	if (!state_is(answer, "awaiting-confirm") && !state_is(answer, "done")) {
		/* no milestone: the watchdog died (SIGKILL?) or cannot write its state */
		char *milestone = host_get(answer, "milestone");
		bool unrecorded = milestone && !strcmp(milestone, "unrecorded");

		free(milestone);
		free(answer);
		answer = NULL;
		wait = host_cmd_wait(a->runid, 10, false);
		rc = hexec(c, &c->io, wait, NULL, &answer, 30, false);
		if (rc == 4 && !unrecorded) {
			fail_interrupted(c, &c->io, a, answer);
			goto out;
		}
		if (rc != 0 || !state_is(answer, "done")) {
			char *now = host_now(c, &c->io);

			fail(c, HOST_FAILED,
				unrecorded ? "the host's watchdog could not write the state of run "
					     "%s (is /run full?): %s; a pending record left is "
					     "repaired by the next deploy"
					   : "the host's watchdog ended without finishing run %s: "
					     "%s; a pending record left is repaired by the next "
					     "deploy",
				a->runid, now);
			free(now);
			goto out;
		}
	}
	if (state_is(answer, "awaiting-confirm")) {
		double deadline = now_seconds() + (double)a->confirm_timeout;
		char *confirm = host_cmd_wait(a->runid, span, true);
		bool confirmed = false;

		log_answer(c, "state", answer);
		step(c, "confirm", "confirming over a new session");
		while (now_seconds() < deadline) {
			if (open_session(c, &fresh) == 0)
				break;
			usleep(500 * 1000);
		}
		free(answer);
		answer = NULL;
		if (host_io_connected(&fresh)) {
			rc = hexec(c, &fresh, confirm, NULL, &answer, span, false);
			confirmed = rc == 0 && state_is(answer, "done");
			if (rc == 3 || rc == 4) {
				free(confirm);
				if (rc == 4) {
					fail_interrupted(c, &fresh, a, answer);
				} else {
					char *now = host_now(c, &fresh);

					fail(c, HOST_FAILED,
						"not confirmed: the host's state is not run "
						"%s's: %s",
						a->runid, now);
					free(now);
				}
				goto out;
			}
		}
		free(confirm);
		if (!confirmed) {
			if (fresh.ops)
				host_io_close(&fresh);
			recover_state(c, a, rollback_op, started);
			goto out;
		}
		/* the new session is the one that proved itself: keep it */
		take_session(&c->io, &fresh);
		log_answer_output(c, answer);
	}
	apply_state(c, a, answer, rollback_op);
out:
	if (fresh.ops)
		host_io_close(&fresh);
	free(cmd);
	free(wait);
	free(answer);
	return c->res->status == HOST_DEPLOYED ? 0 : -1;
}

/*
 * After a failed check of the host (health gate): back to how the host was
 * before the run, the profile at its generation then and the system that
 * ran then running again; the new generation is deleted once that worked.
 */
static int restore_host(struct hostctx *c, const char *why)
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

/* Every declared service port must accept a connection within health_timeout. */
static int health_gate(struct hostctx *c)
{
	const struct runner_opts *o = &c->r->opts;
	double deadline = now_seconds() + (double)o->health_timeout;
	char *why = NULL;

	if (!c->host->nservices || o->health_timeout <= 0)
		return 0;
	step(c, "health", "checking %zu service port%s", c->host->nservices,
		c->host->nservices == 1 ? "" : "s");
	for (size_t i = 0; i < c->host->nservices; i++) {
		const struct inv_service *s = &c->host->services[i];
		int rc;

		while ((rc = host_io_probe(&c->io, s->port, 1000)) != 0 && now_seconds() < deadline)
			usleep(300 * 1000);
		if (rc != 0) {
			why = xasprintf("health gate: service '%s' (port %d) did not answer within "
					"%lds",
				s->name, s->port, o->health_timeout);
			break;
		}
		hlog(c, "service '%s' answers on port %d", s->name, s->port);
	}
	if (!why)
		return 0;
	if (c->res->prev_generation > 0 && o->auto_rollback)
		restore_host(c, why);
	else
		fail(c, HOST_FAILED, "%s", why);
	free(why);
	return -1;
}

static bool is_unchanged(
	const char *goal, const char *path, const char *profile, const char *current)
{
	bool running = current && !strcmp(current, path);
	bool in_profile = profile && !strcmp(profile, path);

	if (!strcmp(goal, "switch"))
		return running && in_profile;
	if (!strcmp(goal, "boot"))
		return in_profile;
	return running;
}

static long previous_generation(const char *gens, long current)
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

static bool has_generation(const char *gens, long gen)
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

/* The system of generation `gen` in the host's list, when it looks like one (caller frees). */
static char *generation_path(const char *gens, long gen)
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

/* Whether the host's record (as the query reported it) names `revision`. */
static bool record_names(const char *query, const char *revision)
{
	char *rev = host_get(query, "record_revision");
	bool same = rev && !strcmp(rev, revision);

	free(rev);
	return same;
}

/*
 * What the query says of the host before the run: the running system, the
 * profile's generation, a live deploy holding the lock (the host is failed:
 * one deploy at a time), or a run that died half-way (reported; the
 * watchdog of this run repairs it first).
 */
static int query_host(struct hostctx *c, const char *query, bool *interrupted)
{
	char *current = host_get(query, "current");
	char *locked = host_get(query, "locked"), *run = answer_text(query, "interrupted");
	int ret = 0;

	char *gen = host_get(query, "gen");

	/* empty: the profile has no generation yet */
	c->res->prev_generation = gen && !*gen ? 0 : host_get_long(query, "gen", -1);
	free(gen);
	if (c->res->prev_generation < 0) {
		ret = fail(c, HOST_FAILED, "the host's answer has no valid generation");
		goto out;
	}
	c->res->generation = c->res->prev_generation;
	if (current && host_is_store_path(current)) {
		c->res->previous = current;
		current = NULL;
	}
	if (locked) {
		start_refused(c, 75, query);
		ret = -1;
		goto out;
	}
	if (run) {
		char *was = host_get(query, "interrupted_running");

		*interrupted = true;
		step(c, "repair",
			"run %s was interrupted on this host (its profile is at generation %ld, "
			"%s runs): this run restores that first",
			run, c->res->prev_generation,
			c->res->previous ? c->res->previous : "nothing");
		if (was && host_is_store_path(was)) {
			free(c->res->previous);
			c->res->previous = was;
			was = NULL;
		}
		free(was);
	}
out:
	free(current);
	free(locked);
	free(run);
	return ret;
}

/*
 * What this run did to the host, for its record, or NULL: nothing to
 * record. An unchanged host is recorded again only when it now stands for
 * another revision; dry-activate changes nothing.
 */
static const char *record_result(const struct hostctx *c, const char *query)
{
	const struct runner_opts *o = &c->r->opts;

	if (!strcmp(c->goal, "dry-activate"))
		return NULL;
	switch (c->res->status) {
	case HOST_DEPLOYED:
		if (c->res->did)
			return c->res->did; /* repaired */
		return o->op == RUNNER_ROLLBACK ? "rollback" : "deployed";
	case HOST_ROLLED_BACK:
		return "rolled-back";
	case HOST_UNCHANGED:
		return o->record.revision && query && !record_names(query, o->record.revision)
			       ? "deployed"
			       : NULL;
	default:
		return NULL;
	}
}

/* The host's record (/var/lib/constel) of what this run did, if anything. */
static void write_record(struct hostctx *c, const char *query)
{
	const char *result = record_result(c, query);
	char *json, *input;

	c->res->did = result; /* the git note says the same */
	if (!result || !host_io_connected(&c->io))
		return;
	json = record_json(&c->r->opts.record, c->host->name, c->res->path, c->res->generation,
		c->goal, result);
	input = xasprintf("%s\n", json);
	if (hexec(c, &c->io, record_cmd_write(), input, NULL, QUERY_TIMEOUT, false) != 0)
		hlog(c, "could not write the deployment record (%s) on the host", result);
	free(json);
	free(input);
}

static void run_host(struct hostctx *c)
{
	struct runner *r = c->r;
	const struct runner_opts *o = &r->opts;
	struct build_item *item = r->builds ? build_set_item(r->builds, c->h) : NULL;
	struct host_activation a = {0};
	char *query = NULL, *path = NULL, *gens = NULL;
	bool interrupted = false;
	int rc;

	{
		step(c, "connect", "connecting");
		if (open_session(c, &c->io) < 0) {
			fail(c, HOST_FAILED, "%s", error_last());
			goto out;
		}
	}
	rc = hexec(c, &c->io, host_cmd_query(), NULL, &query, QUERY_TIMEOUT, true);
	if (rc != 0) {
		if (rc < 0)
			fail(c, HOST_FAILED, "cannot read the host's current system: %s",
				error_last());
		else
			fail(c, HOST_FAILED,
				"cannot read the host's current system (the query exited %d)", rc);
		goto out;
	}
	log_answer(c, "host reports", query);
	if (query_host(c, query, &interrupted) < 0)
		goto out;
	if (o->op == RUNNER_ROLLBACK && o->repair) {
		if (!interrupted) {
			step(c, "done", "nothing to repair: no run was interrupted on this host");
			c->res->status = HOST_UNCHANGED;
			goto out;
		}
		a.mode = HOST_ACTIVATE_REPAIR;
	} else if (o->op == RUNNER_ROLLBACK) {
		long target;

		if (hexec(c, &c->io, host_cmd_generations(), NULL, &gens, QUERY_TIMEOUT, true) !=
			0) {
			fail(c, HOST_FAILED, "cannot list the host's generations");
			goto out;
		}
		target = o->rollback_to ? o->rollback_to
					: previous_generation(gens, c->res->prev_generation);
		if (target <= 0 || !has_generation(gens, target)) {
			fail(c, HOST_FAILED,
				o->rollback_to ? "generation %ld does not exist"
					       : "no generation before %ld",
				o->rollback_to ? o->rollback_to : c->res->prev_generation);
			goto out;
		}
		a.mode = HOST_ACTIVATE_GENERATION;
		a.generation = target;
		c->res->path = generation_path(gens, target);
		step(c, "activate", "switching back to generation %ld", target);
	} else {
		if (item && item->where == BUILD_TARGET) {
			if (build_on_target(c, item, &path) < 0)
				goto out;
		} else {
			path = xstrdup(item->out_path);
		}
		c->res->path = xstrdup(path);
		{
			char *profile = host_get(query, "profile");
			/* after an interrupted run, activating is also what repairs it */
			bool same = !interrupted &&
				    is_unchanged(c->goal, path, profile, c->res->previous);

			free(profile);
			if (same) {
				step(c, "done", "unchanged: %s already runs", path);
				c->res->status = HOST_UNCHANGED;
				goto record;
			}
		}
		/* built on the host: the closure is there already */
		if ((!item || item->where != BUILD_TARGET) && copy_closure(c, path) < 0)
			goto out;
		a.mode = HOST_ACTIVATE_PATH;
		a.path = path;
	}
	a.runid = c->runid;
	a.goal = c->goal;
	a.confirm_timeout = o->confirm_timeout;
	a.activation_timeout = o->activation_timeout;
	a.auto_rollback = o->auto_rollback;
	a.delete_failed = o->op == RUNNER_DEPLOY || o->repair; /* the interrupted generation goes */
	if (activate(c, &a, o->op == RUNNER_ROLLBACK) < 0)
		goto record;
	if (health_gate(c) < 0)
		goto record;
	if (!strcmp(c->goal, "dry-activate"))
		step(c, "done",
			"dry-activate of %s done: nothing was changed (its output is in "
			"the host's log)",
			c->res->path ? c->res->path : "the system");
	else
		step(c, "done", "%s generation %ld",
			o->op == RUNNER_ROLLBACK ? "back on" : "running", c->res->generation);
record:
	write_record(c, query);
out:
	free(query);
	free(path);
	free(gens);
}

/* ---- the pool ---- */

static void host_begin(struct runner *r, size_t h, struct hostctx *c)
{
	const struct inv_host *host = &r->inv->hosts[h];

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->h = h;
	c->host = host;
	c->res = &r->results[h];
	c->goal = r->opts.goal ? r->opts.goal : host->goal;
	c->runid = xasprintf("%s-%s", r->runid, host->name);
	c->res->started = now_seconds();
	c->res->status = HOST_PENDING;
	c->res->phase = "start";
	if (r->opts.log_dir) {
		c->res->log_path = xasprintf("%s/%s.log", r->opts.log_dir, host->name);
		c->log = fopen(c->res->log_path, "a");
	}
}

static void host_end(struct hostctx *c)
{
	c->res->seconds = now_seconds() - c->res->started;
	if (c->res->status == HOST_PENDING)
		c->res->status = HOST_FAILED;
	if (c->res->status == HOST_FAILED && !c->res->error)
		c->res->error = xstrdup("failed");
	hlog(c, "result: %s after %.1fs", host_status_name(c->res->status), c->res->seconds);
	if (c->io.ops)
		host_io_close(&c->io);
	if (c->log)
		fclose(c->log);
	free(c->runid);
}

static void finish_host(struct runner *r, size_t h)
{
	struct host_result *res = &r->results[h];
	size_t nskip = graph_nhosts(r->graph), n;
	size_t *skipped;

	if (res->status == HOST_DEPLOYED || res->status == HOST_UNCHANGED) {
		graph_sched_done(r->sched, h);
		push_event(r, h,
			xasprintf("%s in %.1fs", host_status_name(res->status), res->seconds));
		return;
	}
	push_event(r, h,
		xasprintf("%s: %s", host_status_name(res->status), res->error ? res->error : "?"));
	skipped = xcalloc(nskip + 1, sizeof(*skipped));
	n = graph_sched_failed(r->sched, h, skipped, nskip);
	for (size_t i = 0; i < n; i++) {
		struct host_result *s = &r->results[skipped[i]];

		s->status = HOST_SKIPPED;
		s->phase = "skipped";
		free(s->error);
		s->error = xasprintf("skipped because '%s' %s", r->inv->hosts[h].name,
			res->status == HOST_ROLLED_BACK ? "was rolled back" : "failed");
		push_event(r, skipped[i], xstrdup(s->error));
	}
	free(skipped);
}

static bool runner_any_failed(const struct runner *r)
{
	for (size_t i = 0; i < r->inv->nhosts; i++)
		if (r->selected[i] && r->results[i].status != HOST_DEPLOYED &&
			r->results[i].status != HOST_UNCHANGED)
			return true;
	return false;
}

/*
 * One host of a fleet rollback: restored as it was before the run. The work
 * is done on a copy of its result, which replaces the published one under
 * the lock (the printer may be reading it); its record and note say
 * rolled-back.
 */
static void fleet_rollback_host(struct runner *r, size_t h)
{
	struct host_result *pub = &r->results[h], res = *pub, old;
	struct hostctx c = {0};
	struct host_activation a = {0};
	const char *why = "fleet rollback after a failure elsewhere";

	res.path = pub->path ? xstrdup(pub->path) : NULL;
	res.previous = pub->previous ? xstrdup(pub->previous) : NULL;
	res.error = NULL;
	res.log_path = pub->log_path ? xstrdup(pub->log_path) : NULL;
	c.r = r;
	c.h = h;
	c.host = &r->inv->hosts[h];
	c.res = &res;
	c.goal = r->opts.goal ? r->opts.goal : c.host->goal;
	c.runid = xasprintf("%s-%s-fleet-rollback", r->runid, c.host->name);
	if (res.log_path)
		c.log = fopen(res.log_path, "a");
	step(&c, "rollback", "%s: restoring the host as it was before the run", why);
	if (open_session(&c, &c.io) == 0) {
		a.runid = c.runid;
		a.mode = HOST_ACTIVATE_RESTORE;
		a.generation = res.prev_generation;
		a.running = res.previous;
		a.goal = c.goal;
		a.activation_timeout = r->opts.activation_timeout;
		a.auto_rollback = true;
		a.delete_failed = true;
		activate(&c, &a, true);
		if (res.status == HOST_ROLLED_BACK) {
			fail(&c, HOST_ROLLED_BACK, "%s; restored generation %ld", why,
				res.prev_generation);
			res.generation = res.prev_generation;
			res.changed = false;
			write_record(&c, NULL);
		} else if (res.status != HOST_RESTORE_FAILED) {
			fail(&c, HOST_RESTORE_FAILED, "%s: could not restore it: %s", why,
				res.error ? res.error : "?");
		}
	} else {
		fail(&c, HOST_RESTORE_FAILED, "%s: cannot connect: %s", why, error_last());
	}
	hlog(&c, "result: %s", host_status_name(res.status));
	if (c.io.ops)
		host_io_close(&c.io);
	if (c.log)
		fclose(c.log);
	free(c.runid);
	pthread_mutex_lock(&r->lock);
	old = *pub;
	*pub = res;
	push_event(r, h, xasprintf("%s: %s", host_status_name(res.status), res.error));
	pthread_mutex_unlock(&r->lock);
	free(old.path);
	free(old.previous);
	free(old.error);
	free(old.log_path);
	if (r->opts.on_result)
		r->opts.on_result(r->opts.data, h, pub);
}

/* --rollback-fleet: every host this run changed goes back, consumers first. */
static void fleet_rollback(struct runner *r)
{
	size_t n = r->inv->nhosts, norder = 0;
	bool *set = xcalloc(n + 1, sizeof(*set));
	size_t *order = xcalloc(n + 1, sizeof(*order));
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		set[i] = r->selected[i] && r->results[i].changed;
		any |= set[i];
	}
	pthread_mutex_lock(&r->lock);
	push_event(r, SIZE_MAX,
		xstrdup(any ? "a host failed: rolling back every host this run "
			      "changed, consumers first"
			    : "a host failed: no host was changed, nothing to roll "
			      "back"));
	pthread_mutex_unlock(&r->lock);
	if (!any || graph_order(r->graph, set, true, order, &norder) < 0)
		goto out;
	for (size_t i = 0; i < norder; i++)
		fleet_rollback_host(r, order[i]);
out:
	free(set);
	free(order);
}

static bool local_may_start(struct runner *r)
{
	return r->nlocal > 0 && graph_sched_count(r->sched, GRAPH_READY) == 0 &&
	       graph_sched_count(r->sched, GRAPH_RUNNING) == r->nlocal;
}

static void *worker(void *arg)
{
	struct runner *r = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		size_t h;
		struct hostctx c;

		if (!r->stopping && local_may_start(r)) {
			h = r->local_hosts[--r->nlocal];
		} else if (r->stopping || graph_sched_next(r->sched, &h, 1) == 0) {
			if (r->stopping || graph_sched_finished(r->sched))
				break;
			pthread_cond_wait(&r->wake, &r->lock);
			continue;
		} else if (r->inv->hosts[h].local &&
			   (graph_sched_count(r->sched, GRAPH_RUNNING) > 1 + r->nlocal ||
				   graph_sched_count(r->sched, GRAPH_READY) > 0 ||
				   graph_sched_count(r->sched, GRAPH_WAITING) > 0)) {
			/* the machine constel runs on goes last */
			r->local_hosts[r->nlocal++] = h;
			continue;
		}
		host_begin(r, h, &c);
		pthread_mutex_unlock(&r->lock);
		run_host(&c);
		host_end(&c);
		if (r->opts.on_result)
			r->opts.on_result(r->opts.data, h, c.res);
		pthread_mutex_lock(&r->lock);
		finish_host(r, h);
		pthread_cond_broadcast(&r->wake);
	}
	if (r->active == 1 && r->opts.rollback_fleet && !r->stopping && runner_any_failed(r)) {
		pthread_mutex_unlock(&r->lock);
		fleet_rollback(r);
		pthread_mutex_lock(&r->lock);
	}
	r->active--;
	pthread_cond_broadcast(&r->wake);
	pthread_cond_broadcast(&r->events_cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void runner_init(struct runner *r, const struct inventory *inv, const struct graph *g,
	const bool *selected, struct build_set *builds, const struct runner_opts *opts)
{
	char stamp[32];
	time_t t = time(NULL);

	memset(r, 0, sizeof(*r));
	r->inv = inv;
	r->graph = g;
	r->selected = selected;
	r->builds = builds;
	r->opts = *opts;
	r->results = xcalloc(inv->nhosts + 1, sizeof(*r->results));
	for (size_t i = 0; i < inv->nhosts; i++) {
		r->results[i].generation = -1;
		r->results[i].phase = "waiting";
	}
	r->local_hosts = xcalloc(inv->nhosts + 1, sizeof(*r->local_hosts));
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", gmtime(&t));
	r->runid = xasprintf("%s-%ld", stamp, (long)getpid());
	r->t0 = now_seconds();
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->events_cond, NULL);
}

void runner_waiting_for(const struct runner *r, size_t host, struct buf *out)
{
	size_t n;
	const struct graph_dep *deps = graph_providers(r->graph, host, &n);
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		enum graph_state st;

		if (!r->selected[deps[i].host])
			continue;
		st = graph_sched_state(r->sched, deps[i].host);
		if (st == GRAPH_DONE || st == GRAPH_FAILED || st == GRAPH_SKIPPED)
			continue;
		buf_printf(out, "%s%s", any ? ", " : "", r->inv->hosts[deps[i].host].name);
		any = true;
	}
}

int runner_start(struct runner *r)
{
	size_t nsel = 0;

	if (graph_sched_new(r->graph, r->selected, &r->sched) < 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct build_item *item = r->builds ? build_set_item(r->builds, i) : NULL;

		if (!r->selected[i])
			continue;
		nsel++;
		if (item && item->error && r->results[i].status == HOST_PENDING) {
			r->results[i].status = HOST_FAILED;
			r->results[i].phase = "build";
			r->results[i].error = xstrdup(item->error);
			finish_host(r, i);
		}
	}
	/* say once what each host waits for; the live view shows it as it shrinks */
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct buf b = BUF_INIT(0);

		if (r->selected[i] && r->results[i].status == HOST_PENDING)
			runner_waiting_for(r, i, &b);
		if (b.len)
			push_event(r, i, xasprintf("waits for %s", b.data));
		buf_release(&b);
	}
	pthread_mutex_unlock(&r->lock);
	r->nthreads = (size_t)(r->opts.parallel > 0 ? r->opts.parallel : 1);
	if (r->nthreads > nsel)
		r->nthreads = nsel ? nsel : 1;
	r->threads = xcalloc(r->nthreads, sizeof(*r->threads));
	r->active = r->nthreads;
	for (size_t i = 0; i < r->nthreads; i++) {
		if (pthread_create(&r->threads[i], NULL, worker, r)) {
			fprintf(stderr, "constel: cannot start a worker thread\n");
			abort();
		}
	}
	return 0;
}

bool runner_wait(struct runner *r, int timeout_ms, struct runner_event **events, size_t *n)
{
	struct timespec ts;
	bool running;

	timespec_in_ms(&ts, timeout_ms);
	pthread_mutex_lock(&r->lock);
	if (!r->nevents && r->active)
		pthread_cond_timedwait(&r->events_cond, &r->lock, &ts);
	*events = r->events;
	*n = r->nevents;
	r->events = NULL;
	r->nevents = r->alloc_events = 0;
	running = r->active > 0;
	pthread_mutex_unlock(&r->lock);
	return running;
}

void runner_stop(struct runner *r)
{
	pthread_mutex_lock(&r->lock);
	if (!r->stopping)
		push_event(r, SIZE_MAX,
			xstrdup("interrupted: starting no further host; "
				"running activations finish (Ctrl-C again to "
				"quit now; hosts' watchdogs still finish)"));
	r->stopping = true;
	atomic_store(&r->cancel, true);
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

void runner_finish(struct runner *r)
{
	for (size_t i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	r->nthreads = 0;
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct host_result *res = &r->results[i];

		if (!r->selected[i] || res->status != HOST_PENDING)
			continue;
		res->status = HOST_SKIPPED;
		res->phase = "skipped";
		res->error = xstrdup(r->stopping ? "not started: interrupted" : "not started");
	}
}

bool runner_ok(const struct runner *r)
{
	return !runner_any_failed(r);
}

void runner_release(struct runner *r)
{
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		free(r->results[i].path);
		free(r->results[i].previous);
		free(r->results[i].error);
		free(r->results[i].log_path);
	}
	for (size_t i = 0; i < r->nevents; i++)
		free(r->events[i].text);
	free(r->events);
	free(r->results);
	free(r->threads);
	free(r->local_hosts);
	free(r->runid);
	graph_sched_free(r->sched);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->events_cond);
}
