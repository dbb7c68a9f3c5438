/*
 * deploy/steps.c: one host through its steps, on one worker: connect, ask
 * what runs, build on the host or copy the closure, activate
 * (deploy/activate.c), health gate, record. Everything here works on the
 * host's own result (c->res); only its phase and copy progress are
 * published while it runs (deploy/runner_int.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "deploy/gcroots.h"
#include "deploy/health.h"
#include "deploy/record.h"
#include "deploy/runner_int.h"

void hlog(struct hostctx *c, const char *fmt, ...)
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
void step(
	struct hostctx *c, const char *phase, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	hlog(c, "%s", text);
	c->res->phase = phase;
	runner_publish_step(c->r, c->h, phase, text);
}

void log_output(struct hostctx *c, const struct buf *b, const char *what)
{
	if (!c->log || !b->len)
		return;
	fprintf(c->log, "--- %s ---\n%s%s", what, b->data, b->data[b->len - 1] == '\n' ? "" : "\n");
	if (b->truncated)
		fprintf(c->log, "--- (%s truncated) ---\n", what);
	fflush(c->log);
}

int fail(struct hostctx *c, enum host_status status, const char *fmt, ...)
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

int open_session(struct hostctx *c, struct host_io *io)
{
	struct host_io_config cfg = {.ssh_config = c->r->opts.ssh_config,
		.connect_timeout = c->r->opts.connect_timeout,
		.op_timeout = SSH_OP_TIMEOUT,
		.ops = c->r->opts.io_ops,
		.substitute = c->host->substitute && !c->r->opts.no_substitute};
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

void take_session(struct host_io *to, struct host_io *from)
{
	host_io_close(to);
	*to = *from;
	memset(from, 0, sizeof(*from));
}

int hexec(struct hostctx *c, struct host_io *io, const char *cmd, const char *input,
	char **answer, long timeout, unsigned flags)
{
	struct host_exec ex = {input, timeout, flags & HEXEC_CANCEL ? &c->r->cancel : NULL,
		flags & HEXEC_ROOT, flags & HEXEC_ROOT && c->pass ? c->r->opts.become_pass : NULL};
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

char *answer_text(const char *answer, const char *key)
{
	char *v = answer ? host_get(answer, key) : NULL;
	char *safe = text_sanitize(v);

	free(v);
	return safe;
}

/* The key=value part of an answer, into the host's log, made safe. */
void log_answer(struct hostctx *c, const char *what, const char *answer)
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
void log_answer_output(struct hostctx *c, const char *answer)
{
	const char *out = answer ? host_answer_output(answer) : NULL;
	struct buf b = BUF_INIT(0);

	if (!out || !*out)
		return;
	buf_add_sanitized(&b, out, strlen(out));
	log_output(c, &b, "activation output (the host's, last 16 KiB)");
	buf_release(&b);
}

static void copy_progress(void *data, const struct ssh_copy_stats *s)
{
	struct hostctx *c = data;

	if (!c->copy_told) {
		c->copy_told = true;
		if (!s->paths_total)
			step(c, "copy", "the host has the whole closure");
		else if (s->paths_missing == s->paths_total)
			step(c, "copy", "sending all %zu paths", s->paths_total);
		else if (s->paths_missing && s->paths_substituted)
			step(c, "copy",
				"sending %zu of %zu paths (the host fetched %zu from its "
				"substituters and has the others)",
				s->paths_missing, s->paths_total, s->paths_substituted);
		else if (s->paths_missing)
			step(c, "copy", "sending %zu of %zu paths (the host has the others)",
				s->paths_missing, s->paths_total);
		else if (s->paths_substituted)
			step(c, "copy",
				"the host fetched %zu of %zu paths from its substituters and has "
				"the others",
				s->paths_substituted, s->paths_total);
		else
			step(c, "copy", "the host has all %zu paths", s->paths_total);
	}
	c->res->bytes = s->bytes_sent;
	c->res->paths_copied = s->paths_missing;
	runner_publish_copy(c->r, c->h, s->bytes_sent, s->paths_missing);
}

static int copy_closure(struct hostctx *c, const char *path)
{
	struct ssh_copy_stats st = {0};
	size_t len = strlen(path);

	/*
	 * signing_key: a system built here was signed once, when it was built
	 * (deploy/stream.c); a derivation to build on the host is signed now
	 */
	if (len > 4 && !strcmp(path + len - 4, ".drv") &&
		build_sign(c->r->inv, &path, 1) < 0)
		return fail(c, HOST_FAILED, "%s", error_last());
	step(c, "copy", "asking which paths of the closure the host lacks");
	if (host_io_copy(&c->io, path, &st, copy_progress, c) < 0) {
		if (strstr(error_last(), "signature"))
			/* Nix's words: "lacks a signature by a trusted key" */
			return fail(c, HOST_FAILED,
				"copy refused: the host's nix-daemon takes only signed paths from "
				"%s (%s); make %s a trusted user on the host (trusted-users in "
				"nix.conf), or set signing_key: in the inventory's defaults and "
				"add its public key to the host's trusted-public-keys",
				c->host->user ? c->host->user : "the login user", error_last(),
				c->host->user ? c->host->user : "the login user");
		return fail(c, HOST_FAILED, "copy failed: %s", error_last());
	}
	copy_progress(c, &st);
	if (st.paths_substituted)
		hlog(c, "the host fetched %zu paths from its own substituters", st.paths_substituted);
	hlog(c, "copied %zu of %zu paths, %llu bytes in %.2fs (%u round trips)", st.paths_missing,
		st.paths_total, (unsigned long long)st.bytes_sent, st.seconds, st.round_trips);
	return 0;
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
	ret = hexec(c, &c->io, cmd, NULL, &answer, 0, HEXEC_CANCEL);
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

void start_refused(struct hostctx *c, int rc, const char *answer)
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
 * The health gate (deploy/health.c) after an activation: a host that fails
 * it is restored as it was before the run, and the restored system is
 * checked too.
 */
static int health_gate(struct hostctx *c)
{
	const struct runner_opts *o = &c->r->opts;
	char *why = NULL, *again = NULL;

	if (health_run(c, c->query, &why) == 0)
		return 0;
	if (c->res->prev_generation > 0 && o->auto_rollback) {
		restore_host(c, why);
		if (c->res->status == HOST_ROLLED_BACK && health_run(c, c->query, &again) < 0) {
			char *e = c->res->error;

			c->res->error = xasprintf("%s; the restored system fails its health gate "
						  "too: %s",
				e, again);
			free(e);
		}
	} else {
		fail(c, HOST_FAILED, "%s", why);
	}
	free(why);
	free(again);
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
	char *json, *input, *cmd;

	c->res->did = result; /* the git note says the same */
	if (!result || !host_io_connected(&c->io))
		return;
	json = record_json(&c->r->opts.record, c->host->name, c->res->path, c->res->generation,
		c->goal, result);
	input = xasprintf("%s\n", json);
	cmd = record_cmd_write(c->pkg);
	if (hexec(c, &c->io, cmd, input, NULL, QUERY_TIMEOUT, HEXEC_ROOT) != 0)
		hlog(c, "could not write the deployment record (%s) on the host", result);
	free(cmd);
	free(json);
	free(input);
}

/* The host's sudo wants a password: the one --ask-become-pass read, from now on. */
static int check_become_pass(struct hostctx *c, char *said)
{
	char *cmd = xasprintf("%s/bin/constel-host check", c->pkg);
	int rc;

	free(said);
	said = NULL;
	c->pass = true;
	rc = hexec(c, &c->io, cmd, NULL, &said, QUERY_TIMEOUT, HEXEC_CANCEL | HEXEC_ROOT);
	free(cmd);
	if (rc == 0 && said && !strcmp(said, "0\n")) {
		hlog(c, "sudo takes the password given with --ask-become-pass");
		free(said);
		return 0;
	}
	free(said);
	return fail(c, HOST_FAILED,
		"sudo as %s refused the password given with --ask-become-pass (exit %d)",
		c->host->user ? c->host->user : "the login user", rc);
}

/*
 * A host whose commands become root (`become:`) is asked once, at once,
 * whether that works without a prompt: a host whose sudo wants a password
 * fails here, before anything is copied, and the others go on.
 */
static int check_become(struct hostctx *c)
{
	char *said = NULL, *line, *cmd;
	struct ssh_copy_stats st;
	int rc;

	if (!c->host->become)
		return 0;
	/* constel-host, which every command that needs root runs (deploy/hostpkg.h):
	 * content-addressed, it needs no signature */
	if (host_io_copy(&c->io, c->pkg, &st, NULL, NULL) < 0)
		return fail(c, HOST_FAILED, "cannot copy constel's host commands (%s): %s", c->pkg,
			error_last());
	/* as the commands that need root are run, its complaint on stdout */
	cmd = xasprintf("%s %s/bin/constel-host check 2>&1", c->host->become, c->pkg);
	rc = hexec(c, &c->io, cmd, NULL, &said, QUERY_TIMEOUT, HEXEC_CANCEL);
	free(cmd);
	if (rc >= 0 && said && !strcmp(said, "0\n")) {
		free(said);
		return 0;
	}
	if (c->r->opts.become_pass && !strcmp(c->host->become, "sudo -n --") && said &&
		strstr(said, "password is required"))
		return check_become_pass(c, said);
	line = text_sanitize(said && *said ? said : "no answer");
	line[strcspn(line, "\n")] = '\0';
	fail(c, HOST_FAILED,
		"cannot become root with '%s' as %s: %s (it must work without a password, or "
		"pass --ask-become-pass: docs/become.md)",
		c->host->become, c->host->user ? c->host->user : "the login user", line);
	free(line);
	free(said);
	return -1;
}

/* Connects and reads what runs; *query is the host's answer. */
static int connect_and_query(struct hostctx *c, char **query, bool *interrupted)
{
	int rc;

	step(c, "connect", "connecting");
	if (open_session(c, &c->io) < 0)
		return fail(c, HOST_FAILED, "%s", error_last());
	if (check_become(c) < 0)
		return -1;
	rc = hexec(c, &c->io, host_cmd_query(), NULL, query, QUERY_TIMEOUT, HEXEC_CANCEL);
	if (rc < 0)
		return fail(c, HOST_FAILED, "cannot read the host's current system: %s",
			error_last());
	if (rc > 0)
		return fail(c, HOST_FAILED,
			"cannot read the host's current system (the query exited %d)", rc);
	log_answer(c, "host reports", *query);
	return query_host(c, *query, interrupted);
}

/* rollback: the generation to switch back to, into *a. */
static int plan_rollback(struct hostctx *c, struct host_activation *a)
{
	const struct runner_opts *o = &c->r->opts;
	char *gens = NULL;
	long target;
	int ret = 0;

	if (hexec(c, &c->io, host_cmd_generations(), NULL, &gens, QUERY_TIMEOUT, HEXEC_CANCEL) != 0) {
		ret = fail(c, HOST_FAILED, "cannot list the host's generations");
		goto out;
	}
	target = o->rollback_to ? o->rollback_to
				: host_gens_previous(gens, c->res->prev_generation);
	if (target <= 0 || !host_gens_has(gens, target)) {
		ret = fail(c, HOST_FAILED,
			o->rollback_to ? "generation %ld does not exist" : "no generation before %ld",
			o->rollback_to ? o->rollback_to : c->res->prev_generation);
		goto out;
	}
	a->mode = HOST_ACTIVATE_GENERATION;
	a->generation = target;
	c->res->path = host_gens_path(gens, target);
	step(c, "activate", "switching back to generation %ld", target);
out:
	free(gens);
	return ret;
}

/*
 * deploy: the system to activate (built here, or now on the host) into
 * *path and *a; 1 when the host runs it already (unchanged), -1 failed.
 */
static int plan_deploy(struct hostctx *c, const char *query, bool interrupted,
	struct host_activation *a, char **path)
{
	struct build_item *item = build_set_item(c->r->builds, c->h);
	bool on_target = item->where == BUILD_TARGET;
	char *profile;
	bool same;

	if (on_target && build_on_target(c, item, path) < 0)
		return -1;
	if (!on_target)
		*path = xstrdup(item->out_path);
	c->res->path = xstrdup(*path);
	profile = host_get(query, "profile");
	/* after an interrupted run, activating is also what repairs it */
	same = !interrupted && is_unchanged(c->goal, *path, profile, c->res->previous);
	free(profile);
	if (same) {
		step(c, "done", "unchanged: %s already runs", *path);
		c->res->status = HOST_UNCHANGED;
		return 1;
	}
	/* built on the host: the closure is there already */
	if (!on_target && copy_closure(c, *path) < 0)
		return -1;
	a->mode = HOST_ACTIVATE_PATH;
	a->path = *path;
	return 0;
}

/*
 * A host already degraded before the run is reported; with
 * --require-healthy it is skipped, untouched (-1).
 */
static int degraded_before(struct hostctx *c)
{
	char *failed = NULL;
	int ret = 0;

	if (!health_is_degraded(c->query, &failed))
		return 0;
	if (c->r->opts.require_healthy)
		ret = fail(c, HOST_SKIPPED,
			"the host is degraded before the deploy (failed units: %s); skipped "
			"(--require-healthy): nothing was activated",
			failed ? failed : "none listed");
	else
		step(c, "health",
			"the host is degraded before the deploy (failed units: %s): they do not "
			"count against the new system",
			failed ? failed : "none listed");
	free(failed);
	return ret;
}

/*
 * A system built here and now on the host stays in this machine's store
 * (deploy/gcroots.h): a rollback to it never rebuilds it.
 */
static void keep_alive(struct hostctx *c)
{
	const struct build_item *item = c->r->builds ? build_set_item(c->r->builds, c->h) : NULL;

	if (!item || item->where == BUILD_TARGET || !c->res->path || !strcmp(c->goal, "dry-activate"))
		return;
	if (gcroots_keep(c->host->name, c->res->path) < 0)
		hlog(c, "%s", error_last());
	else
		hlog(c, "kept alive here: %s (a GC root under the state directory)", c->res->path);
}

/* The activation planned in *a, then the health gate. */
static void activate_and_check(struct hostctx *c, struct host_activation *a)
{
	const struct runner_opts *o = &c->r->opts;
	const char *goal = c->goal;
	int rc;

	a->runid = c->runid;
	a->goal = c->goal;
	a->confirm_timeout = host_confirm_timeout(c);
	a->activation_timeout = o->activation_timeout;
	a->auto_rollback = o->auto_rollback;
	a->delete_failed = o->op == RUNNER_DEPLOY || o->repair; /* the interrupted generation goes */
	a->pkg = c->pkg;
	if (activate(c, a, o->op == RUNNER_ROLLBACK) < 0)
		return;
	/* once rebooted into it, the new system runs: a restore switches back */
	rc = o->reboot ? reboot_and_wait(c, c->res->path) : 0;
	rc = rc < 0 ? -1 : health_gate(c);
	c->goal = goal;
	if (rc < 0)
		return;
	if (!strcmp(c->goal, "dry-activate"))
		step(c, "done",
			"dry-activate of %s done: nothing was changed (its output is in the host's "
			"log)",
			c->res->path ? c->res->path : "the system");
	else if (o->reboot)
		step(c, "done", "rebooted into generation %ld", c->res->generation);
	else
		step(c, "done", "%s generation %ld",
			o->op == RUNNER_ROLLBACK ? "back on" : "running", c->res->generation);
	keep_alive(c);
}

void steps_run_host(struct hostctx *c)
{
	const struct runner_opts *o = &c->r->opts;
	struct host_activation a = {0};
	char *query = NULL, *path = NULL;
	bool interrupted = false;
	int rc = 0;

	if (connect_and_query(c, &query, &interrupted) < 0)
		goto out;
	c->query = query;
	if (o->op == RUNNER_REBOOT) {
		steps_reboot_host(c);
		goto out;
	}
	if (o->op == RUNNER_ROLLBACK && o->repair && !interrupted) {
		step(c, "done", "nothing to repair: no run was interrupted on this host");
		c->res->status = HOST_UNCHANGED;
		goto out;
	}
	if (o->op == RUNNER_ROLLBACK && o->repair)
		a.mode = HOST_ACTIVATE_REPAIR;
	else if (o->op == RUNNER_ROLLBACK)
		rc = plan_rollback(c, &a);
	else
		rc = plan_deploy(c, query, interrupted, &a, &path);
	if (rc < 0)
		goto out;
	if (rc == 0 && degraded_before(c) == 0)
		activate_and_check(c, &a);
	write_record(c, query);
out:
	free(query);
	free(path);
}

long host_confirm_timeout(const struct hostctx *c)
{
	long run = c->r->opts.confirm_timeout;

	return run >= 0 ? run : c->host->confirm_timeout;
}

long host_health_timeout(const struct hostctx *c)
{
	long run = c->r->opts.health_timeout;

	return run >= 0 ? run : c->host->health_timeout;
}

void hostctx_begin(struct hostctx *c, struct runner *r, size_t h, const char *suffix)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->h = h;
	c->host = &r->inv->hosts[h];
	c->res = &r->work[h];
	c->goal = runner_goal(r, h);
	c->pkg = c->host->become ? r->hostpkg : NULL;
	c->runid = xasprintf("%s-%s%s", r->runid, c->host->name, suffix);
	if (c->res->log_path)
		c->log = fopen(c->res->log_path, "a");
}

void hostctx_end(struct hostctx *c)
{
	if (c->io.ops)
		host_io_close(&c->io);
	if (c->log)
		fclose(c->log);
	free(c->runid);
}

/*
 * One host of a fleet rollback: restored as it was before the run; its
 * record and note say rolled-back.
 */
void steps_fleet_restore(struct hostctx *c)
{
	struct host_result *res = c->res;
	struct host_activation a = {0};
	const char *why = "fleet rollback after a failure elsewhere";

	step(c, "rollback", "%s: restoring the host as it was before the run", why);
	if (open_session(c, &c->io) < 0) {
		fail(c, HOST_RESTORE_FAILED, "%s: cannot connect: %s", why, error_last());
		goto out;
	}
	a.runid = c->runid;
	a.mode = HOST_ACTIVATE_RESTORE;
	a.generation = res->prev_generation;
	a.running = res->previous;
	a.goal = c->goal;
	a.activation_timeout = c->r->opts.activation_timeout;
	a.auto_rollback = true;
	a.delete_failed = true;
	a.pkg = c->pkg;
	activate(c, &a, true);
	if (res->status == HOST_ROLLED_BACK) {
		fail(c, HOST_ROLLED_BACK, "%s; restored generation %ld", why, res->prev_generation);
		res->generation = res->prev_generation;
		res->changed = false;
		write_record(c, NULL);
	} else if (res->status != HOST_RESTORE_FAILED) {
		fail(c, HOST_RESTORE_FAILED, "%s: could not restore it: %s", why,
			res->error ? res->error : "?");
	}
out:
	hlog(c, "result: %s", host_status_name(res->status));
}
