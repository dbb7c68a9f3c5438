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
#include "deploy/record.h"
#include "transport/transport.h"

/* Remote answers are small; anything bigger is cut (and says so). */
#define ANSWER_MAX	 (256u << 10)
#define CLOSURE_LIST_MAX (16u << 20)
#define SSH_OP_TIMEOUT	 20

/* One host being worked on by one worker. */
struct hostctx {
	struct runner *r;
	size_t h;
	const struct inv_host *host;
	struct host_result *res;
	FILE *log;
	struct ssh_conn *conn;
	const char *goal;
	char *runid;
	bool copy_told; /* the copy's first progress said how many paths go */
};

const char *host_status_name(enum host_status s)
{
	static const char *const names[] = {
		"pending", "deployed", "unchanged", "failed", "rolled-back", "skipped"};

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

/* ---- talking to the host: over SSH, or locally for `local` hosts ---- */

static int open_session(struct hostctx *c, struct ssh_conn **out)
{
	struct ssh_target t;
	int ret;

	host_ssh_target(
		&t, c->host, c->r->opts.ssh_config, c->r->opts.connect_timeout, SSH_OP_TIMEOUT);
	ret = ssh_conn_open(out, &t);
	if (ret == 0) {
		c->res->sessions++;
		hlog(c, "ssh session %u open", c->res->sessions);
	} else {
		hlog(c, "ssh: %s", error_last());
	}
	return ret;
}

/*
 * Runs a command on the host; *answer gets its stdout. Returns the exit
 * status (>= 0), or a negative code when the host could not be asked.
 */
static int hexec(
	struct hostctx *c, struct ssh_conn *conn, const char *cmd, const char *input, char **answer)
{
	struct ssh_exec_result res;
	int ret;

	ssh_exec_result_init(&res, ANSWER_MAX, ANSWER_MAX);
	if (c->host->local) {
		const char *argv[] = {"sh", "-c", cmd, NULL};

		ret = proc_run_input(
			argv, input ? input : "", input ? strlen(input) : 0, &res.out, &res.err, 0);
		/* proc_run reports a non-zero exit as failure; the caller wants the status */
		res.exit_status = ret == 0 ? 0 : 1;
		ret = 0;
	} else {
		ret = ssh_conn_exec(conn, cmd, input, input ? strlen(input) : 0, &res);
	}
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

	if (c->host->local)
		return 0;
	if ((ret = closure_of(path, &paths)) < 0) {
		fail(c, HOST_FAILED, "%s", error_last());
		goto out;
	}
	step(c, "copy", "asking which of the closure's %zu paths the host lacks", paths.nr);
	ret = ssh_copy_closure(
		c->conn, (const char *const *)paths.v, paths.nr, &st, copy_progress, c);
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

/* build: target: copy the derivation's closure and realise it on the host. */
static int build_on_target(struct hostctx *c, struct build_item *item, char **out_path)
{
	struct buf log = BUF_INIT(1u << 20);
	char *cmd = NULL, *answer = NULL, *q;
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
	q = shell_quote(item->drv_path);
	cmd = xasprintf("nix-store --realise %s 2>&1 >/dev/null | tail -n 40 >&2; "
			"nix-store --query --outputs %s",
		q, q);
	free(q);
	ret = hexec(c, c->conn, cmd, NULL, &answer);
	if (ret != 0 || !answer || strncmp(answer, "/nix/store/", 11)) {
		ret = fail(c, HOST_FAILED, "build on the host failed (see the log)");
		goto out;
	}
	answer[strcspn(answer, "\n")] = '\0';
	*out_path = answer;
	answer = NULL;
	ret = 0;
out:
	buf_release(&log);
	free(cmd);
	free(answer);
	return ret;
}

/* ---- activation ---- */

/* The state's `result`, after the watchdog ended. */
static void apply_state(struct hostctx *c, const char *state, bool rollback_op)
{
	char *result = host_get(state, "result");
	char *reason = host_get(state, "reason");
	char *path = host_get(state, "path");

	c->res->generation = host_get_long(state, "gen", -1);
	if (path && *path) {
		free(c->res->path);
		c->res->path = path;
		path = NULL;
	}
	if (result && !strcmp(result, "ok")) {
		c->res->status = HOST_DEPLOYED;
		c->res->changed = !rollback_op;
	} else if (result && !strcmp(result, "rolled-back")) {
		fail(c, HOST_ROLLED_BACK, "%s; restored generation %ld", reason ? reason : "?",
			host_get_long(state, "prev", -1));
		c->res->generation = host_get_long(state, "prev", -1);
	} else {
		fail(c, HOST_FAILED, "%s", reason && *reason ? reason : "activation failed");
	}
	free(result);
	free(reason);
	free(path);
}

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
 * After the host's session was lost: reconnect (bounded) and read how the
 * watchdog ended. The watchdog restores the previous generation by itself.
 */
static void recover_state(struct hostctx *c, const char *runid, bool rollback_op)
{
	const struct runner_opts *o = &c->r->opts;
	double deadline = now_seconds() + (double)o->confirm_timeout + o->activation_timeout + 30;
	char *cmd = host_cmd_wait("activating|awaiting-confirm", o->activation_timeout + 30);

	step(c, "recover", "connection lost; waiting for the host's watchdog to finish");
	while (now_seconds() < deadline) {
		struct ssh_conn *conn = NULL;
		char *state = NULL;

		if (open_session(c, &conn) == 0 && hexec(c, conn, cmd, NULL, &state) >= 0 &&
			!state_of_run(state, runid)) {
			/* the connection dropped before this run's watchdog started */
			fail(c, HOST_FAILED,
				"lost the connection before the activation started; "
				"the host was not changed");
			ssh_conn_free(c->conn);
			c->conn = conn;
			free(state);
			free(cmd);
			return;
		}
		if (conn && state && state_is(state, "done")) {
			hlog(c, "state after reconnect:\n%s", state);
			/*
			 * "ok" here means the watchdog was not waiting for a confirmation
			 * (none asked) and this new session got in: the host is fine.
			 */
			apply_state(c, state, rollback_op);
			ssh_conn_free(c->conn);
			c->conn = conn;
			free(state);
			free(cmd);
			return;
		}
		free(state);
		ssh_conn_free(conn);
		sleep(1);
	}
	free(cmd);
	fail(c, HOST_FAILED,
		"lost the connection during activation and could not reconnect; "
		"the host's watchdog restores the previous generation itself");
}

/*
 * Starts the watchdog and follows it to its end: activation, then the
 * confirmation over a NEW session that proves the new system still lets
 * constel in.
 */
static int activate(struct hostctx *c, const struct host_activation *a, bool rollback_op)
{
	const struct runner_opts *o = &c->r->opts;
	char *cmd = host_cmd_start(a), *answer = NULL, *wait = NULL;
	struct ssh_conn *fresh = NULL;
	int rc;

	step(c, "activate", "activating %s (%s)", a->path ? a->path : "a generation", a->goal);
	/* returns at the watchdog's first milestone, with its state */
	rc = hexec(c, c->conn, cmd, host_watchdog_script(), &answer);
	if (rc < 0) {
		recover_state(c, a->runid, rollback_op);
		goto out;
	}
	if (rc != 0) {
		char *holder = answer ? host_get(answer, "locked") : NULL;

		if (holder)
			fail(c, HOST_FAILED, "another deploy is running on the host (pid %s)",
				holder);
		else
			fail(c, HOST_FAILED, "could not start the activation (exit %d)", rc);
		free(holder);
		goto out;
	}
	if (!state_is(answer, "awaiting-confirm") && !state_is(answer, "done")) {
		/* no milestone came (the watchdog died?): ask the state file */
		free(answer);
		answer = NULL;
		wait = host_cmd_wait("activating", o->activation_timeout + 30);
		if (hexec(c, c->conn, wait, NULL, &answer) != 0 || !answer) {
			recover_state(c, a->runid, rollback_op);
			goto out;
		}
	}
	hlog(c, "state:\n%s", answer);
	if (state_is(answer, "awaiting-confirm")) {
		double deadline = now_seconds() + (double)a->confirm_timeout;
		char *confirm = host_cmd_confirm(a->runid, o->activation_timeout + 30);
		bool confirmed = false;

		step(c, "confirm", c->host->local ? "confirming" : "confirming over a new session");
		while (!c->host->local && now_seconds() < deadline) {
			if (open_session(c, &fresh) == 0)
				break;
			usleep(500 * 1000);
		}
		free(answer);
		answer = NULL;
		if (c->host->local || fresh) {
			if (hexec(c, c->host->local ? NULL : fresh, confirm, NULL, &answer) == 0 &&
				state_is(answer, "done"))
				confirmed = true;
		}
		free(confirm);
		if (!confirmed) {
			ssh_conn_free(fresh);
			fresh = NULL;
			recover_state(c, a->runid, rollback_op);
			goto out;
		}
		/* the new session is the one that proved itself: keep it */
		ssh_conn_free(c->conn);
		c->conn = fresh;
		fresh = NULL;
		hlog(c, "state:\n%s", answer);
	}
	if (!state_is(answer, "done")) {
		fail(c, HOST_FAILED, "activation did not finish within %lds",
			o->activation_timeout);
		goto out;
	}
	apply_state(c, answer, rollback_op);
out:
	ssh_conn_free(fresh);
	free(cmd);
	free(wait);
	free(answer);
	return c->res->status == HOST_DEPLOYED ? 0 : -1;
}

/* Switches the host back to `generation` (restore after a failed gate). */
static int restore_generation(struct hostctx *c, long generation, const char *why)
{
	struct host_activation a = {0};
	char *runid = xasprintf("%s-restore", c->runid), *answer = NULL, *cmd = NULL;
	long failed_gen = c->res->generation;
	char *saved = xstrdup(why);
	int ret;

	a.runid = runid;
	a.generation = generation;
	a.goal = c->goal;
	a.activation_timeout = c->r->opts.activation_timeout;
	a.auto_rollback = true;
	step(c, "restore", "restoring generation %ld: %s", generation, why);
	ret = activate(c, &a, true);
	if (ret == 0) {
		cmd = xasprintf("nix-env -p /nix/var/nix/profiles/system --delete-generations %ld",
			failed_gen);
		if (failed_gen > 0 && failed_gen != generation)
			hexec(c, c->conn, cmd, NULL, NULL);
		fail(c, HOST_ROLLED_BACK, "%s; restored generation %ld", saved, generation);
		c->res->generation = generation;
		c->res->changed = false;
	} else {
		fail(c, HOST_FAILED, "%s; restoring generation %ld failed too", saved, generation);
	}
	free(saved);
	free(runid);
	free(answer);
	free(cmd);
	return -1;
}

/* Every declared service port must accept a connection within health_timeout. */
static int health_gate(struct hostctx *c)
{
	const struct runner_opts *o = &c->r->opts;
	double deadline = now_seconds() + (double)o->health_timeout;
	char *why = NULL;

	if (!c->host->nservices || o->health_timeout <= 0 || c->host->local)
		return 0;
	step(c, "health", "checking %zu service port%s", c->host->nservices,
		c->host->nservices == 1 ? "" : "s");
	for (size_t i = 0; i < c->host->nservices; i++) {
		const struct inv_service *s = &c->host->services[i];
		int rc;

		while ((rc = ssh_conn_probe(c->conn, s->port, 1000)) != 0 &&
			now_seconds() < deadline)
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
		restore_generation(c, c->res->prev_generation, why);
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

/* Whether the host's record (as the query reported it) names `revision`. */
static bool record_names(const char *query, const char *revision)
{
	char *rev = host_get(query, "record_revision");
	bool same = rev && !strcmp(rev, revision);

	free(rev);
	return same;
}

static void run_host(struct hostctx *c)
{
	struct runner *r = c->r;
	const struct runner_opts *o = &r->opts;
	struct build_item *item = r->builds ? build_set_item(r->builds, c->h) : NULL;
	struct host_activation a = {0};
	char *query = NULL, *path = NULL, *gens = NULL;

	if (!c->host->local) {
		step(c, "connect", "connecting");
		if (open_session(c, &c->conn) < 0) {
			fail(c, HOST_FAILED, "%s", error_last());
			goto out;
		}
	}
	if (hexec(c, c->conn, host_cmd_query(), NULL, &query) != 0) {
		fail(c, HOST_FAILED, "cannot read the host's current system");
		goto out;
	}
	hlog(c, "host reports:\n%s", query);
	c->res->previous = host_get(query, "current");
	c->res->prev_generation = host_get_long(query, "gen", 0);
	c->res->generation = c->res->prev_generation;
	{
		char *holder = host_get(query, "locked");

		if (holder && *holder) {
			fail(c, HOST_FAILED, "another deploy is running on the host (pid %s)",
				holder);
			free(holder);
			goto out;
		}
		free(holder);
	}
	if (o->op == RUNNER_ROLLBACK) {
		long target;

		if (hexec(c, c->conn, host_cmd_generations(), NULL, &gens) != 0) {
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
		a.generation = target;
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
			bool same = is_unchanged(c->goal, path, profile, c->res->previous);

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
		a.path = path;
	}
	a.runid = c->runid;
	a.goal = c->goal;
	a.confirm_timeout = o->confirm_timeout;
	a.activation_timeout = o->activation_timeout;
	a.auto_rollback = o->auto_rollback;
	a.delete_failed = o->op == RUNNER_DEPLOY;
	if (activate(c, &a, o->op == RUNNER_ROLLBACK) < 0)
		goto record;
	if (health_gate(c) < 0)
		goto record;
	step(c, "done", "%s generation %ld", o->op == RUNNER_ROLLBACK ? "back on" : "running",
		c->res->generation);
record:
	/* an unchanged host is recorded again only when it now stands for another revision */
	if (o->op == RUNNER_DEPLOY && !c->host->local &&
		(c->res->status == HOST_DEPLOYED ||
			(c->res->status == HOST_UNCHANGED && o->record.revision &&
				!record_names(query, o->record.revision))) &&
		record_host(c->conn, &o->record, c->host->name, c->res->path, c->res->generation,
			c->goal) < 0)
		hlog(c, "could not write the deployment record: %s", error_last());
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
	ssh_conn_free(c->conn);
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
	for (size_t i = 0; i < norder; i++) {
		struct hostctx c;
		struct host_result *res = &r->results[order[i]];
		struct host_activation a = {0};
		double seconds = res->seconds;
		char *why;

		host_begin(r, order[i], &c);
		c.res->status = HOST_DEPLOYED;
		why = xasprintf("fleet rollback after a failure elsewhere");
		if (c.host->local || open_session(&c, &c.conn) == 0) {
			a.runid = c.runid;
			a.goal = c.goal;
			a.activation_timeout = r->opts.activation_timeout;
			a.auto_rollback = true;
			if (!strcmp(c.goal, "switch") || !strcmp(c.goal, "boot"))
				a.generation = res->prev_generation;
			else
				a.path = res->previous;
			if ((a.path || a.generation > 0) && activate(&c, &a, true) == 0) {
				fail(&c, HOST_ROLLED_BACK, "%s; restored %s", why,
					a.path ? a.path : "the previous generation");
				res->generation = res->prev_generation;
				res->changed = false;
			} else {
				fail(&c, HOST_FAILED, "%s: could not restore it", why);
			}
		} else {
			fail(&c, HOST_FAILED, "%s: cannot connect: %s", why, error_last());
		}
		step(&c, "rollback", "%s", res->error);
		free(why);
		host_end(&c);
		res->seconds += seconds;
	}
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

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
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
