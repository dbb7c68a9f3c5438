/*
 * deploy/stream.c: a deploy that evaluates and builds as it goes. The
 * evaluation workers (deploy/eval.h) take the hosts providers first; as
 * each host is evaluated it is queued for its build group (same place,
 * architecture and builder), whose builder thread realises whatever the
 * group has queued in one `nix-store --realise --keep-going`, while later
 * hosts still evaluate. A host the schedule hands out before its system is
 * built is parked, and starts once it is: so a host's activation can begin
 * while another host is still being evaluated. A host whose evaluation or
 * build fails fails alone (its dependents are skipped), and nothing is
 * built for a host that was skipped meanwhile.
 *
 * Everything here is under the pool's lock, except the evaluation and the
 * builds themselves.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "deploy/eval.h"
#include "deploy/runner_int.h"

/* Under the lock: the host's system cannot be had; the host fails (unless already over). */
static void stream_fail(struct runner *r, size_t h, const char *phase, const char *why)
{
	struct host_result *res = &r->results[h];

	r->stream[h] = STREAM_FAILED;
	if (runner_host_is_over(r, h))
		return; /* skipped meanwhile: that says more */
	for (size_t i = 0; i < r->nparked; i++)
		if (r->parked[i] == h)
			r->parked[i] = r->parked[--r->nparked];
	res->status = HOST_FAILED;
	res->phase = phase;
	free(res->error);
	res->error = xstrdup(why);
	runner_host_ended(r, h);
}

/* On an evaluation worker (or the starting thread, for cached hosts). */
static void on_evaluated(void *data, struct build_item *it)
{
	struct runner *r = data;
	size_t h = it->host;

	pthread_mutex_lock(&r->pool.lock);
	if (it->error) {
		stream_fail(r, h, "evaluate", it->error);
	} else if (it->where == BUILD_TARGET) {
		r->stream[h] = STREAM_READY; /* built on the host, by its worker */
		runner_event(r, h, xstrdup("evaluated; it builds on the host"));
	} else {
		r->stream[h] = STREAM_QUEUED;
		runner_event(r, h,
			xasprintf("evaluated %s", it->cached ? "(from the cache)" : "(by Nix)"));
	}
	pthread_cond_broadcast(&r->pool.wake);
	pthread_mutex_unlock(&r->pool.lock);
}

/* Under the lock: the queued items of a group still worth building, marked building. */
static size_t take_queued(struct runner *r, size_t group, struct build_item **batch)
{
	size_t n = 0;

	for (size_t i = 0; i < r->builds->nitems; i++) {
		struct build_item *it = &r->builds->items[i];

		if (r->stream[it->host] != STREAM_QUEUED ||
			!build_same_group(it, &r->builds->items[group], r->inv))
			continue;
		if (runner_host_is_over(r, it->host)) {
			r->stream[it->host] = STREAM_FAILED; /* skipped: not built */
			continue;
		}
		r->stream[it->host] = STREAM_BUILDING;
		r->results[it->host].phase = "build";
		batch[n++] = it;
	}
	return n;
}

/* Under the lock: whether any host of the group may still have to be built. */
static bool group_pending(const struct runner *r, size_t group)
{
	for (size_t i = 0; i < r->builds->nitems; i++) {
		const struct build_item *it = &r->builds->items[i];

		if ((r->stream[it->host] == STREAM_EVALUATING ||
			    r->stream[it->host] == STREAM_QUEUED) &&
			!runner_host_is_over(r, it->host) &&
			build_same_group(it, &r->builds->items[group], r->inv))
			return true;
	}
	return false;
}

/*
 * What a builder built, before its hosts may start: signed once with
 * signing_key (for hosts whose daemon does not trust the login user), then
 * with `cache:` pushed to the fleet's binary cache (`nix copy --to`, which
 * skips what the cache has), so that hosts substitute it from there. A
 * failure is an event, not the host's: the copy still sends what it lacks
 * (and a host that wants signatures then says so).
 */
static void publish(struct runner *r, struct build_item **items, size_t n)
{
	const struct inventory *inv = r->inv;
	const char **paths = xcalloc(n + 1, sizeof(*paths));
	struct strvec argv = STRVEC_INIT;
	struct buf err = BUF_INIT(65536);
	double start = now_seconds();
	char *said = NULL;
	int ret;

	if (!n) {
		free(paths);
		return;
	}
	for (size_t i = 0; i < n; i++)
		paths[i] = items[i]->out_path;
	if ((ret = build_sign(inv, paths, n)) < 0)
		said = xasprintf("could not sign: %s", error_last());
	if (ret == 0 && inv->defaults.cache) {
		proc_push_nix(&argv);
		strvec_push(&argv, "copy");
		strvec_push(&argv, "--to");
		strvec_push(&argv, inv->defaults.cache);
		for (size_t i = 0; i < n; i++)
			strvec_push(&argv, paths[i]);
		if (proc_run((const char *const *)argv.v, NULL, &err) < 0)
			said = xasprintf("could not push to the cache %s: %s", inv->defaults.cache,
				err.len ? buf_tail_lines(&err, 1) : error_last());
		else
			said = xasprintf("pushed to the cache %s in %.1fs", inv->defaults.cache,
				now_seconds() - start);
		strvec_release(&argv);
	}
	pthread_mutex_lock(&r->pool.lock);
	for (size_t i = 0; said && i < n; i++)
		runner_event(r, items[i]->host, xstrdup(said));
	pthread_mutex_unlock(&r->pool.lock);
	free(said);
	free(paths);
	buf_release(&err);
}

/* Under the lock: a built batch's hosts may start (or fail, for those that did not build). */
static void batch_built(struct runner *r, struct build_item **batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t h = batch[i]->host;

		if (batch[i]->error) {
			stream_fail(r, h, "build", batch[i]->error);
			continue;
		}
		r->stream[h] = STREAM_READY;
		r->results[h].phase = "built";
		runner_event(r, h,
			xasprintf("built %s in %.1fs", batch[i]->out_path, batch[i]->seconds));
	}
	pthread_cond_broadcast(&r->pool.wake);
}

static void *builder(void *arg)
{
	struct stream_builder *b = arg;
	struct runner *r = b->r;
	struct build_item **batch = xcalloc(r->builds->nitems + 1, sizeof(*batch));
	struct build_item **pushes = xcalloc(r->builds->nitems + 1, sizeof(*pushes));
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&r->pool.lock);
	while (!r->stopping && !r->stream_over) {
		struct buf log = BUF_INIT(NIX_OUTPUT_MAX);
		size_t n = take_queued(r, b->group, batch), npush = 0;

		if (!n) {
			if (!group_pending(r, b->group))
				break;
			pthread_cond_wait(&r->pool.wake, &r->pool.lock);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			runner_event(r, batch[i]->host,
				n == 1 ? xstrdup("building")
				       : xasprintf("building (with %zu other host%s)", n - 1,
						 n == 2 ? "" : "s"));
		pthread_mutex_unlock(&r->pool.lock);
		build_realise(r->builds, r->inv, batch, n, &log);
		/* signed and in the cache before the hosts start: they fetch from there */
		for (size_t i = 0; i < n; i++)
			if (!batch[i]->error)
				pushes[npush++] = batch[i];
		publish(r, pushes, npush);
		pthread_mutex_lock(&r->pool.lock);
		if (r->opts.build_log)
			buf_add(r->opts.build_log, log.data ? log.data : "", log.len);
		buf_release(&log);
		batch_built(r, batch, n);
	}
	pthread_mutex_unlock(&r->pool.lock);
	free(batch);
	free(pushes);
	return NULL;
}

/* The items in the order the evaluation should take them: providers first. */
static void providers_first(struct runner *r)
{
	struct build_set *set = r->builds;
	size_t n = r->inv->nhosts, norder = 0;
	size_t *order = xcalloc(n + 1, sizeof(*order));
	struct build_item *sorted = xcalloc(set->nitems + 1, sizeof(*sorted));
	bool *taken = xcalloc(set->nitems + 1, sizeof(*taken));
	size_t k = 0;

	if (graph_order(r->graph, r->selected, false, order, &norder) < 0)
		norder = 0;
	for (size_t i = 0; i < norder; i++)
		for (size_t j = 0; j < set->nitems; j++)
			if (!taken[j] && set->items[j].host == order[i]) {
				sorted[k++] = set->items[j];
				taken[j] = true;
			}
	for (size_t j = 0; j < set->nitems; j++)
		if (!taken[j])
			sorted[k++] = set->items[j];
	memcpy(set->items, sorted, set->nitems * sizeof(*sorted));
	free(sorted);
	free(taken);
	free(order);
}

void stream_start(struct runner *r)
{
	struct build_set *set = r->builds;

	r->stream = xcalloc(r->inv->nhosts + 1, sizeof(*r->stream));
	r->parked = xcalloc(r->inv->nhosts + 1, sizeof(*r->parked));
	r->builders = xcalloc(set->nitems + 1, sizeof(*r->builders));
	providers_first(r);
	for (size_t i = 0; i < set->nitems; i++) {
		const struct build_item *it = &set->items[i];
		bool first = it->where != BUILD_TARGET;

		if (it->error)
			r->stream[it->host] = STREAM_FAILED;
		else if (it->drv_path && it->out_path)
			r->stream[it->host] = it->where == BUILD_TARGET ? STREAM_READY : STREAM_QUEUED;
		for (size_t j = 0; j < i && first; j++)
			first = !build_same_group(&set->items[j], it, r->inv);
		if (first)
			r->builders[r->nbuilders++] = (struct stream_builder){r, i, 0};
	}
	set->eval.evaluated = on_evaluated;
	set->eval.data = r;
	eval_start(&r->eval, set);
	for (size_t i = 0; i < r->nbuilders; i++)
		if (pthread_create(&r->builders[i].thread, NULL, builder, &r->builders[i])) {
			fprintf(stderr, "constel: cannot start a build thread\n");
			abort();
		}
}

bool stream_ready(const struct runner *r, size_t h)
{
	return !r->stream || r->stream[h] == STREAM_READY;
}

bool runner_eval_progress(struct runner *r, size_t *done, size_t *total)
{
	*done = *total = 0;
	if (!r->eval)
		return false;
	eval_wait(r->eval, 0, done, total);
	return *total > 0;
}

void stream_stop(struct runner *r)
{
	if (r->eval)
		eval_stop(r->eval);
}

void stream_finish(struct runner *r)
{
	struct buf log = BUF_INIT(64u << 20);

	if (!r->eval)
		return;
	pthread_mutex_lock(&r->pool.lock);
	r->stream_over = true; /* what is left is for hosts that will not run */
	pthread_cond_broadcast(&r->pool.wake);
	pthread_mutex_unlock(&r->pool.lock);
	for (size_t i = 0; i < r->nbuilders; i++)
		pthread_join(r->builders[i].thread, NULL);
	eval_stop(r->eval);
	eval_finish(r->eval, &log);
	r->eval = NULL;
	if (r->opts.build_log) {
		/* the evaluations first, as `constel build` writes them */
		struct buf both = BUF_INIT(0);

		buf_add(&both, log.data ? log.data : "", log.len);
		buf_add(&both, r->opts.build_log->data ? r->opts.build_log->data : "",
			r->opts.build_log->len);
		buf_release(r->opts.build_log);
		*r->opts.build_log = both;
	}
	buf_release(&log);
}
