/*
 * deploy/runner.c: the run's schedule, on common/pool. next() hands out
 * the ready hosts (the machine constel runs on last), run() carries one
 * through its steps (deploy/steps.c), finished() publishes its result and
 * marks its dependents ready or skipped; with --rollback-fleet, once every
 * host ended and one failed, the same pool restores the changed hosts.
 */
#include "deploy/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deploy/hostpkg.h"
#include "deploy/runner_int.h"

const char *host_status_name(enum host_status s)
{
	static const char *const names[HOST_NSTATUS] = {"pending", "deployed", "unchanged",
		"failed", "rolled-back", "skipped", "restore-failed"};

	return names[s];
}

static bool ended(enum graph_state st)
{
	return st == GRAPH_DONE || st == GRAPH_FAILED || st == GRAPH_SKIPPED;
}

static bool ok_status(enum host_status s)
{
	return s == HOST_DEPLOYED || s == HOST_UNCHANGED;
}

/* ---- events and what workers publish (under the lock) ---- */

void runner_event(struct runner *r, size_t h, char *text)
{
	struct runner_event *e;

	xgrow((void **)&r->events, &r->alloc_events, r->nevents + 1, sizeof(*r->events));
	e = &r->events[r->nevents++];
	e->host = h;
	e->at = now_seconds() - r->t0;
	e->text = text;
	pthread_cond_broadcast(&r->pool.wake);
}

void runner_publish_step(struct runner *r, size_t h, const char *phase, char *text)
{
	pthread_mutex_lock(&r->pool.lock);
	r->results[h].phase = phase;
	runner_event(r, h, text);
	pthread_mutex_unlock(&r->pool.lock);
}

void runner_publish_copy(struct runner *r, size_t h, uint64_t bytes, size_t paths)
{
	pthread_mutex_lock(&r->pool.lock);
	r->results[h].bytes = bytes;
	r->results[h].paths_copied = paths;
	pthread_mutex_unlock(&r->pool.lock);
}

static void result_release(struct host_result *res)
{
	free(res->path);
	free(res->previous);
	free(res->error);
	free(res->log_path);
	memset(res, 0, sizeof(*res));
}

void runner_host_ended(struct runner *r, size_t h)
{
	struct host_result *res = &r->results[h];
	size_t nskip = graph_nhosts(r->graph), n;
	size_t *skipped;

	if (ok_status(res->status)) {
		graph_sched_done(r->sched, h);
		runner_event(r, h,
			xasprintf("%s in %.1fs", host_status_name(res->status), res->seconds));
		return;
	}
	runner_event(r, h,
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
		runner_event(r, skipped[i], xstrdup(s->error));
	}
	free(skipped);
}

bool runner_host_is_over(const struct runner *r, size_t h)
{
	return ended(graph_sched_state(r->sched, h));
}

static bool any_failed(const struct runner *r)
{
	for (size_t i = 0; i < r->inv->nhosts; i++)
		if (r->selected[i] && !ok_status(r->results[i].status))
			return true;
	return false;
}

/* ---- the pool's callbacks ---- */

/* The machine constel runs on goes last: a ready local host waits for every other. */
static bool hold_back(struct runner *r, size_t h)
{
	return r->inv->hosts[h].local &&
	       (graph_sched_count(r->sched, GRAPH_RUNNING) > 1 + r->nheld ||
		       graph_sched_count(r->sched, GRAPH_READY) > 0 ||
		       graph_sched_count(r->sched, GRAPH_WAITING) > 0);
}

static bool held_may_start(struct runner *r)
{
	return r->nheld > 0 && graph_sched_count(r->sched, GRAPH_READY) == 0 &&
	       graph_sched_count(r->sched, GRAPH_RUNNING) == r->nheld;
}

/* Under the lock: host h starts; its work result is a fresh one. */
static void host_starts(struct runner *r, size_t h)
{
	struct host_result *w = &r->work[h], *pub = &r->results[h];

	memset(w, 0, sizeof(*w));
	w->generation = -1;
	w->status = HOST_PENDING;
	w->phase = "start";
	w->started = now_seconds();
	if (r->opts.log_dir)
		w->log_path = xasprintf("%s/%s.log", r->opts.log_dir, r->inv->hosts[h].name);
	pub->phase = w->phase;
	pub->started = w->started;
}

/* Under the lock: every host ended; restore the changed ones if one failed. */
static void plan_fleet_rollback(struct runner *r)
{
	size_t n = r->inv->nhosts;
	bool *set, any = false;

	r->phase = PHASE_DONE;
	if (!r->opts.rollback_fleet || !any_failed(r))
		return;
	set = xcalloc(n + 1, sizeof(*set));
	for (size_t i = 0; i < n; i++) {
		set[i] = r->selected[i] && r->results[i].changed;
		any |= set[i];
	}
	runner_event(r, SIZE_MAX,
		xstrdup(any ? "a host failed: rolling back every host this run changed, consumers "
			      "first"
			    : "a host failed: no host was changed, nothing to roll back"));
	r->rb_order = xcalloc(n + 1, sizeof(*r->rb_order));
	if (any && graph_order(r->graph, set, true, r->rb_order, &r->rb_n) == 0 && r->rb_n)
		r->phase = PHASE_ROLLBACK;
	free(set);
}

/* Under the lock: the fleet rollback's next host, a deep copy of its result to work on. */
static void restore_starts(struct runner *r, size_t h)
{
	const struct host_result *pub = &r->results[h];
	struct host_result *w = &r->work[h];

	*w = *pub;
	w->path = pub->path ? xstrdup(pub->path) : NULL;
	w->previous = pub->previous ? xstrdup(pub->previous) : NULL;
	w->error = NULL;
	w->log_path = pub->log_path ? xstrdup(pub->log_path) : NULL;
	r->rb_running = true;
}

/* A parked host whose system is now built, taken off the list. */
static bool unpark(struct runner *r, size_t *h)
{
	for (size_t i = 0; i < r->nparked; i++) {
		if (!stream_ready(r, r->parked[i]))
			continue;
		*h = r->parked[i];
		r->parked[i] = r->parked[--r->nparked];
		return true;
	}
	return false;
}

/* Tasks: a host h to run is task h; a host to restore is task nhosts + h. */
static bool next_task(void *data, size_t *task)
{
	struct runner *r = data;
	size_t h, n = r->inv->nhosts;

	if (r->stopping)
		return false;
	while (r->phase == PHASE_HOSTS) {
		if (held_may_start(r)) {
			h = r->held[--r->nheld];
		} else if (unpark(r, &h)) {
			if (hold_back(r, h)) {
				r->held[r->nheld++] = h;
				continue;
			}
		} else if (graph_sched_next(r->sched, &h, 1) == 0) {
			if (!graph_sched_finished(r->sched))
				return false;
			plan_fleet_rollback(r);
			break;
		} else if (!stream_ready(r, h)) {
			r->parked[r->nparked++] = h; /* its system is not built yet */
			continue;
		} else if (hold_back(r, h)) {
			r->held[r->nheld++] = h;
			continue;
		}
		host_starts(r, h);
		*task = h;
		return true;
	}
	if (r->phase != PHASE_ROLLBACK || r->rb_running)
		return false;
	if (r->rb_next == r->rb_n) {
		r->phase = PHASE_DONE;
		return false;
	}
	h = r->rb_order[r->rb_next++];
	restore_starts(r, h);
	*task = n + h;
	return true;
}

static void run_task(void *data, size_t task)
{
	struct runner *r = data;
	size_t n = r->inv->nhosts, h = task < n ? task : task - n;
	struct host_result *res = &r->work[h];
	struct hostctx c;

	hostctx_begin(&c, r, h, task < n ? "" : "-fleet-rollback");
	if (task < n) {
		steps_run_host(&c);
		res->seconds = now_seconds() - res->started;
		if (res->status == HOST_PENDING)
			res->status = HOST_FAILED;
		if (res->status == HOST_FAILED && !res->error)
			res->error = xstrdup("failed");
		hlog(&c, "result: %s after %.1fs", host_status_name(res->status), res->seconds);
	} else {
		steps_fleet_restore(&c);
	}
	hostctx_end(&c);
	if (r->opts.on_result)
		r->opts.on_result(r->opts.data, h, res);
}

/* Under the lock: the work result becomes the published one. */
static void task_finished(void *data, size_t task)
{
	struct runner *r = data;
	size_t n = r->inv->nhosts, h = task < n ? task : task - n;

	result_release(&r->results[h]);
	r->results[h] = r->work[h];
	memset(&r->work[h], 0, sizeof(r->work[h]));
	if (task < n) {
		runner_host_ended(r, h);
	} else {
		r->rb_running = false;
		runner_event(r, h,
			xasprintf("%s: %s", host_status_name(r->results[h].status),
				r->results[h].error ? r->results[h].error : "?"));
	}
}

static bool run_done(void *data)
{
	const struct runner *r = data;

	return r->phase == PHASE_DONE || r->stopping;
}

static const struct pool_ops runner_pool = {
	.next = next_task,
	.run = run_task,
	.finished = task_finished,
	.done = run_done,
};

/* ---- the API ---- */

struct runner *runner_new(const struct inventory *inv, const struct graph *g,
	const bool *selected, struct build_set *builds, const struct runner_opts *opts)
{
	struct runner *r = xcalloc(1, sizeof(*r));
	char stamp[32];
	time_t t = time(NULL);

	r->inv = inv;
	r->graph = g;
	r->selected = selected;
	r->builds = builds;
	r->opts = *opts;
	r->results = xcalloc(inv->nhosts + 1, sizeof(*r->results));
	r->work = xcalloc(inv->nhosts + 1, sizeof(*r->work));
	for (size_t i = 0; i < inv->nhosts; i++) {
		r->results[i].generation = -1;
		r->results[i].phase = "waiting";
	}
	r->held = xcalloc(inv->nhosts + 1, sizeof(*r->held));
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", gmtime(&t));
	r->runid = xasprintf("%s-%ld", stamp, (long)getpid());
	r->t0 = now_seconds();
	pool_init(&r->pool, &runner_pool, r);
	return r;
}

/* Under the lock: the selected providers `host` still waits for, as "a, b". */
static void waiting_for(const struct runner *r, size_t host, struct buf *out)
{
	size_t n;
	const struct graph_dep *deps = graph_providers(r->graph, host, &n);
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		if (!r->selected[deps[i].host] || ended(graph_sched_state(r->sched, deps[i].host)))
			continue;
		buf_printf(out, "%s%s", any ? ", " : "", r->inv->hosts[deps[i].host].name);
		any = true;
	}
}

int runner_start(struct runner *r)
{
	size_t nsel = 0, workers;

	for (size_t i = 0; i < r->inv->nhosts && !r->hostpkg; i++)
		if (r->selected[i] && r->inv->hosts[i].become && !(r->hostpkg = hostpkg_path()))
			return -1;
	if (graph_sched_new(r->graph, r->selected, &r->sched) < 0)
		return -1;
	pthread_mutex_lock(&r->pool.lock);
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct build_item *item = r->builds ? build_set_item(r->builds, i) : NULL;

		if (!r->selected[i])
			continue;
		nsel++;
		if (item && item->error && r->results[i].status == HOST_PENDING) {
			r->results[i].status = HOST_FAILED;
			r->results[i].phase = "build";
			r->results[i].error = xstrdup(item->error);
			runner_host_ended(r, i);
		}
	}
	/* say once what each host waits for; the live view shows it as it shrinks */
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct buf b = BUF_INIT(0);

		if (r->selected[i] && r->results[i].status == HOST_PENDING)
			waiting_for(r, i, &b);
		if (b.len)
			runner_event(r, i, xasprintf("waits for %s", b.data));
		buf_release(&b);
	}
	pthread_mutex_unlock(&r->pool.lock);
	if (r->opts.stream && r->builds)
		stream_start(r);
	workers = r->opts.parallel > 0 ? (size_t)r->opts.parallel : 1;
	pool_start(&r->pool, workers < nsel ? workers : nsel);
	return 0;
}

bool runner_wait(struct runner *r, int timeout_ms, struct runner_event **events, size_t *n)
{
	struct timespec ts;
	bool running;

	timespec_in_ms(&ts, timeout_ms);
	pthread_mutex_lock(&r->pool.lock);
	if (!r->nevents && pool_busy(&r->pool))
		pthread_cond_timedwait(&r->pool.wake, &r->pool.lock, &ts);
	*events = r->events;
	*n = r->nevents;
	r->events = NULL;
	r->nevents = r->alloc_events = 0;
	running = pool_busy(&r->pool);
	pthread_mutex_unlock(&r->pool.lock);
	return running;
}

void runner_snapshot(struct runner *r, struct runner_host_view *out)
{
	double now = now_seconds();

	pthread_mutex_lock(&r->pool.lock);
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		const struct host_result *res = &r->results[i];
		struct runner_host_view *v = &out[i];
		bool done = r->sched && ended(graph_sched_state(r->sched, i));

		memset(v, 0, sizeof(*v));
		v->state = done ? RUNNER_ENDED : res->started > 0 ? RUNNER_RUNNING : RUNNER_WAITING;
		v->status = done ? res->status : HOST_PENDING;
		v->phase = res->phase;
		v->bytes = res->bytes;
		v->seconds = done ? res->seconds : res->started > 0 ? now - res->started : 0.0;
		if (v->state == RUNNER_WAITING && r->selected[i] && r->sched) {
			struct buf b = BUF_INIT(0);

			waiting_for(r, i, &b);
			v->waiting_for = b.len ? buf_detach(&b) : NULL;
			buf_release(&b);
		}
	}
	pthread_mutex_unlock(&r->pool.lock);
}

void runner_views_release(struct runner_host_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].waiting_for);
		v[i].waiting_for = NULL;
	}
}

void runner_stop(struct runner *r)
{
	pthread_mutex_lock(&r->pool.lock);
	if (!r->stopping)
		runner_event(r, SIZE_MAX,
			xstrdup("interrupted: starting no further host; running activations "
				"finish (Ctrl-C again to quit now; hosts' watchdogs still "
				"finish)"));
	r->stopping = true;
	atomic_store(&r->cancel, true);
	pthread_cond_broadcast(&r->pool.wake);
	pthread_mutex_unlock(&r->pool.lock);
	stream_stop(r);
	pool_stop(&r->pool);
}

void runner_finish(struct runner *r)
{
	pool_join(&r->pool);
	stream_finish(r);
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		struct host_result *res = &r->results[i];

		if (!r->selected[i] || res->status != HOST_PENDING)
			continue;
		res->status = HOST_SKIPPED;
		res->phase = "skipped";
		res->error = xstrdup(r->stopping ? "not started: interrupted" : "not started");
	}
}

const struct host_result *runner_result(const struct runner *r, size_t h)
{
	return &r->results[h];
}

const char *runner_goal(const struct runner *r, size_t h)
{
	return r->opts.goal ? r->opts.goal : r->inv->hosts[h].goal;
}

bool runner_ok(const struct runner *r)
{
	return !any_failed(r);
}

void runner_free(struct runner *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->inv->nhosts; i++) {
		result_release(&r->results[i]);
		result_release(&r->work[i]);
	}
	for (size_t i = 0; i < r->nevents; i++)
		free(r->events[i].text);
	free(r->events);
	free(r->results);
	free(r->work);
	free(r->held);
	free(r->stream);
	free(r->parked);
	free(r->builders);
	free(r->rb_order);
	free(r->runid);
	graph_sched_free(r->sched);
	pool_release(&r->pool);
	free(r);
}
