#include "graph.h"

#include "common/names.h"
#include "common/util.h"

#include <assert.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dep_list {
	struct graph_dep *v;
	size_t nr;
	size_t alloc;
};

struct host {
	const char *name;
	struct dep_list providers; /* owns the labels */
	struct dep_list consumers; /* borrows them from the providers' lists */
	const char **tags;
	size_t ntags;
};

struct graph {
	size_t n;
	struct host *hosts;
	struct arena strings; /* names, tags and their arrays */
	/*
	 * Duplicate edges are found without a set of all edges: mark[p] is
	 * c + 1 when the edge c → p exists, valid for the host c = marked.
	 * When edges of another consumer come, its existing providers are
	 * marked again, so adding each host's edges together (as callers do)
	 * is linear in the edges; marks are never cleared.
	 */
	size_t *mark;
	size_t marked;
	struct name_index names; /* every host by name, for graph_find() and hints */
};

struct graph *graph_new(size_t nhosts, const char *const *names)
{
	struct graph *g = xcalloc(1, sizeof(*g));

	assert(nhosts < UINT32_MAX);
	assert(nhosts == 0 || names);
	g->n = nhosts;
	g->hosts = xcalloc(nhosts, sizeof(*g->hosts));
	name_index_init(&g->names, nhosts);
	for (size_t i = 0; i < nhosts; i++) {
		const struct name_key *k;

		assert(names[i] && names[i][0]);
		g->hosts[i].name = arena_strdup(&g->strings, names[i]);
		k = name_index_add(&g->names, g->hosts[i].name, i);
		assert(k->count == 1); /* names are distinct */
		(void)k;
	}
	g->mark = xcalloc(nhosts + 1, sizeof(*g->mark));
	g->marked = SIZE_MAX;
	return g;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		struct host *h = &g->hosts[i];

		for (size_t j = 0; j < h->providers.nr; j++)
			free((char *)h->providers.v[j].label);
		free(h->providers.v);
		free(h->consumers.v);
	}
	arena_release(&g->strings);
	free(g->hosts);
	free(g->mark);
	name_index_release(&g->names);
	free(g);
}

/* Marks the edge consumer → provider; false if it existed already. */
static bool mark_edge(struct graph *g, size_t consumer, size_t provider)
{
	if (g->marked != consumer) {
		const struct dep_list *p = &g->hosts[consumer].providers;

		for (size_t i = 0; i < p->nr; i++)
			g->mark[p->v[i].host] = consumer + 1;
		g->marked = consumer;
	}
	if (g->mark[provider] == consumer + 1)
		return false;
	g->mark[provider] = consumer + 1;
	return true;
}

static void dep_list_push(struct dep_list *l, size_t host, const char *label)
{
	xgrow((void **)&l->v, &l->alloc, l->nr + 1, sizeof(*l->v));
	l->v[l->nr].host = host;
	l->v[l->nr].label = label;
	l->nr++;
}

void graph_add_edge(struct graph *g, size_t consumer, size_t provider, const char *label)
{
	char *copy;

	assert(consumer < g->n && provider < g->n);
	if (!mark_edge(g, consumer, provider))
		return;
	copy = label ? xstrdup(label) : NULL;
	dep_list_push(&g->hosts[consumer].providers, provider, copy);
	dep_list_push(&g->hosts[provider].consumers, consumer, copy);
}

void graph_set_tags(struct graph *g, size_t host, const char *const *tags, size_t ntags)
{
	struct host *h;

	assert(host < g->n && (ntags == 0 || tags));
	h = &g->hosts[host];
	/* tags set before stay in the arena until graph_free(): callers set them once */
	h->tags = arena_alloc(&g->strings, (ntags + 1) * sizeof(*h->tags));
	h->ntags = ntags;
	for (size_t i = 0; i < ntags; i++)
		h->tags[i] = arena_strdup(&g->strings, tags[i]);
}

size_t graph_nhosts(const struct graph *g)
{
	return g->n;
}

const char *graph_name(const struct graph *g, size_t host)
{
	assert(host < g->n);
	return g->hosts[host].name;
}

int graph_find(const struct graph *g, const char *name, size_t *host)
{
	const struct name_key *k = name_index_find(&g->names, name);

	if (!k)
		return CONSTEL_ENOTFOUND;
	*host = k->first;
	return 0;
}

const struct graph_dep *graph_providers(const struct graph *g, size_t host, size_t *n)
{
	assert(host < g->n);
	*n = g->hosts[host].providers.nr;
	return *n ? g->hosts[host].providers.v : NULL;
}

const struct graph_dep *graph_consumers(const struct graph *g, size_t host, size_t *n)
{
	assert(host < g->n);
	*n = g->hosts[host].consumers.nr;
	return *n ? g->hosts[host].consumers.v : NULL;
}

static bool in_mask(const bool *mask, size_t host)
{
	return !mask || mask[host];
}

/*
 * Writes the report of the cycle cyc[0..k-1] (each depending on the next,
 * the last on the first; lab[i] labels cyc[i] → cyc[i + 1]), starting at
 * its lowest index. Sets the summary as the error; returns -1.
 */
static int report_cycle(
	const struct graph *g, const size_t *cyc, const char *const *lab, size_t k, char **msg_out)
{
	struct buf b = BUF_INIT(0);
	size_t start = 0;

	for (size_t i = 1; i < k; i++)
		if (cyc[i] < cyc[start])
			start = i;
	buf_adds(&b, "dependency cycle: ");
	for (size_t i = 0; i <= k; i++)
		buf_printf(&b, "%s%s", i ? " → " : "", g->hosts[cyc[(start + i) % k]].name);
	error_set("%s", b.data);
	if (msg_out) {
		for (size_t i = 0; i < k; i++) {
			size_t from = (start + i) % k, to = (start + i + 1) % k;

			buf_printf(&b, "\n  %s → %s: %s", g->hosts[cyc[from]].name,
				g->hosts[cyc[to]].name, lab[from] ? lab[from] : "(no label)");
		}
		*msg_out = buf_detach(&b);
	}
	buf_release(&b);
	return -1;
}

/*
 * Depth-first search with an explicit stack, so that a long chain cannot
 * overflow the C stack. The stack is the current path: when an edge leads
 * back to a host on it, the path from there is a cycle. Only hosts and
 * edges within `mask` (NULL: all) are walked.
 */
static int find_cycle(const struct graph *g, const bool *mask, char **msg_out)
{
	enum { WHITE, GREY, BLACK };
	unsigned char *color = NULL;
	size_t *next = NULL, *depth = NULL, *stack = NULL, *cyc = NULL;
	const char **lab = NULL;
	size_t top = 0;
	int ret = 0;

	if (msg_out)
		*msg_out = NULL;
	color = xcalloc(g->n, sizeof(*color));
	next = xcalloc(g->n, sizeof(*next));
	depth = xcalloc(g->n, sizeof(*depth));
	stack = xcalloc(g->n, sizeof(*stack));
	for (size_t root = 0; root < g->n; root++) {
		if (color[root] != WHITE || !in_mask(mask, root))
			continue;
		color[root] = GREY;
		depth[root] = 0;
		stack[top++] = root;
		while (top) {
			size_t v = stack[top - 1], w;
			const struct dep_list *p = &g->hosts[v].providers;

			if (next[v] == p->nr) {
				color[v] = BLACK;
				top--;
				continue;
			}
			w = p->v[next[v]++].host;
			if (!in_mask(mask, w) || color[w] == BLACK)
				continue;
			if (color[w] == WHITE) {
				color[w] = GREY;
				depth[w] = top;
				stack[top++] = w;
				continue;
			}
			/*
			 * w is on the path: stack[depth[w]..top-1] is the cycle,
			 * and each host on it left through the edge just before
			 * its next[].
			 */
			size_t k = top - depth[w];

			cyc = xcalloc(k, sizeof(*cyc));
			lab = xcalloc(k, sizeof(*lab));
			for (size_t i = 0; i < k; i++) {
				size_t h = stack[depth[w] + i];

				cyc[i] = h;
				lab[i] = g->hosts[h].providers.v[next[h] - 1].label;
			}
			ret = report_cycle(g, cyc, lab, k, msg_out);
			goto out;
		}
	}
out:
	free(color);
	free(next);
	free(depth);
	free(stack);
	free(cyc);
	free(lab);
	return ret;
}

int graph_check_cycles(const struct graph *g, char **msg_out)
{
	return find_cycle(g, NULL, msg_out);
}

int graph_waves(const struct graph *g, int *wave_out, size_t *nwaves)
{
	size_t *left = NULL, *queue = NULL;
	size_t head = 0, tail = 0;
	int max = -1;
	int ret = 0;

	left = xmalloc((g->n ? g->n : 1) * sizeof(*left));
	queue = xmalloc((g->n ? g->n : 1) * sizeof(*queue));
	for (size_t i = 0; i < g->n; i++) {
		left[i] = g->hosts[i].providers.nr;
		wave_out[i] = 0;
		if (!left[i])
			queue[tail++] = i;
	}
	/* Kahn: a host's wave is final once its last provider is popped. */
	while (head < tail) {
		size_t p = queue[head++];
		const struct dep_list *c = &g->hosts[p].consumers;

		if (wave_out[p] > max)
			max = wave_out[p];
		for (size_t j = 0; j < c->nr; j++) {
			size_t h = c->v[j].host;

			if (wave_out[h] < wave_out[p] + 1)
				wave_out[h] = wave_out[p] + 1;
			if (--left[h] == 0)
				queue[tail++] = h;
		}
	}
	if (tail < g->n) {
		ret = find_cycle(g, NULL, NULL);
		assert(ret < 0);
		goto out;
	}
	*nwaves = (size_t)(max + 1);
out:
	free(left);
	free(queue);
	return ret;
}

int graph_order(
	const struct graph *g, const bool *set, bool consumers_first, size_t *out, size_t *nout)
{
	int *wave = NULL;
	size_t *start = NULL, *sorted = NULL;
	size_t nwaves = 0, k = 0;
	int ret;

	wave = xmalloc((g->n ? g->n : 1) * sizeof(*wave));
	ret = graph_waves(g, wave, &nwaves);
	if (ret < 0)
		goto out;
	/* counting sort by wave, stable, so hosts of a wave stay by index */
	start = xcalloc(nwaves + 1, sizeof(*start));
	sorted = xmalloc((g->n ? g->n : 1) * sizeof(*sorted));
	for (size_t i = 0; i < g->n; i++)
		start[wave[i] + 1]++;
	for (size_t w = 0; w < nwaves; w++)
		start[w + 1] += start[w];
	for (size_t i = 0; i < g->n; i++)
		sorted[start[wave[i]]++] = i;
	/* start[w] is now the end of wave w */
	for (size_t j = 0; j < nwaves; j++) {
		size_t w = consumers_first ? nwaves - 1 - j : j;
		size_t from = w ? start[w - 1] : 0;

		for (size_t i = from; i < start[w]; i++)
			if (in_mask(set, sorted[i]))
				out[k++] = sorted[i];
	}
	*nout = k;
out:
	free(wave);
	free(start);
	free(sorted);
	return ret;
}

static int select_pattern(const struct graph *g, const char *pat, bool *selected)
{
	bool any = false;
	size_t h;

	if (!*pat)
		return error_set("empty host pattern");
	if (pat[0] == '@') {
		if (!pat[1])
			return error_set("empty tag in host pattern '@'");
		for (size_t i = 0; i < g->n; i++) {
			for (size_t j = 0; j < g->hosts[i].ntags; j++) {
				if (!strcmp(g->hosts[i].tags[j], pat + 1)) {
					selected[i] = true;
					any = true;
					break;
				}
			}
		}
		if (!any)
			return error_setc(CONSTEL_ENOTFOUND, "no host has tag '%s'", pat + 1);
		return 0;
	}
	if (strpbrk(pat, "*?[")) {
		for (size_t i = 0; i < g->n; i++) {
			if (!fnmatch(pat, g->hosts[i].name, 0)) {
				selected[i] = true;
				any = true;
			}
		}
		if (!any)
			return error_setc(CONSTEL_ENOTFOUND, "no host matches '%s'", pat);
		return 0;
	}
	if (graph_find(g, pat, &h) == 0) {
		selected[h] = true;
		return 0;
	}
	/* the hint rule of every "did you mean" (common/names.h) */
	const char *hint = name_index_suggest(&g->names, pat);

	if (hint)
		return error_setc(
			CONSTEL_ENOTFOUND, "unknown host '%s'; did you mean '%s'?", pat, hint);
	return error_setc(CONSTEL_ENOTFOUND, "unknown host '%s'", pat);
}

int graph_select(const struct graph *g, const char *const *patterns, size_t npatterns,
	bool with_deps, bool *selected)
{
	size_t *stack = NULL;
	size_t top = 0;
	int ret = 0;

	assert(npatterns == 0 || patterns);
	for (size_t i = 0; i < g->n; i++)
		selected[i] = npatterns == 0;
	if (npatterns == 0)
		goto out;
	for (size_t i = 0; i < npatterns; i++) {
		ret = select_pattern(g, patterns[i], selected);
		if (ret < 0)
			goto out;
	}
	if (!with_deps)
		goto out;
	stack = xmalloc((g->n ? g->n : 1) * sizeof(*stack));
	for (size_t i = 0; i < g->n; i++)
		if (selected[i])
			stack[top++] = i;
	while (top) {
		const struct dep_list *p = &g->hosts[stack[--top]].providers;

		for (size_t j = 0; j < p->nr; j++) {
			if (!selected[p->v[j].host]) {
				selected[p->v[j].host] = true;
				stack[top++] = p->v[j].host;
			}
		}
	}
out:
	free(stack);
	return ret;
}

const char *graph_state_name(enum graph_state state)
{
	static const char *const names[GRAPH_NSTATES] = {
		[GRAPH_UNSELECTED] = "unselected",
		[GRAPH_WAITING] = "waiting",
		[GRAPH_READY] = "ready",
		[GRAPH_RUNNING] = "running",
		[GRAPH_DONE] = "done",
		[GRAPH_FAILED] = "failed",
		[GRAPH_SKIPPED] = "skipped",
	};

	assert((unsigned)state < GRAPH_NSTATES);
	return names[state];
}

struct graph_sched {
	const struct graph *g;
	unsigned char *state;
	size_t *pending; /* selected providers not done yet */
	/* every host enters the queue at most once, so n slots suffice */
	size_t *queue;
	size_t head;
	size_t tail;
	size_t *stack;
	size_t count[GRAPH_NSTATES];
};

static void sched_set(struct graph_sched *s, size_t host, enum graph_state state)
{
	s->count[s->state[host]]--;
	s->count[state]++;
	s->state[host] = (unsigned char)state;
}

/* Whether the selected hosts can all be ordered (Kahn, on a scratch copy). */
static bool sched_acyclic(const struct graph_sched *s, const bool *selected)
{
	const struct graph *g = s->g;
	size_t *left = xmalloc((g->n ? g->n : 1) * sizeof(*left));
	size_t *queue = xmalloc((g->n ? g->n : 1) * sizeof(*queue));
	size_t head = 0, tail = 0, nselected = 0;

	for (size_t i = 0; i < g->n; i++) {
		left[i] = s->pending[i];
		if (!selected[i])
			continue;
		nselected++;
		if (!left[i])
			queue[tail++] = i;
	}
	while (head < tail) {
		const struct dep_list *c = &g->hosts[queue[head++]].consumers;

		for (size_t j = 0; j < c->nr; j++)
			if (selected[c->v[j].host] && --left[c->v[j].host] == 0)
				queue[tail++] = c->v[j].host;
	}
	free(left);
	free(queue);
	return tail == nselected;
}

int graph_sched_new(const struct graph *g, const bool *selected, struct graph_sched **out)
{
	struct graph_sched *s = xcalloc(1, sizeof(*s));
	size_t alloc = g->n ? g->n : 1;
	int ret = 0;

	assert(selected);
	*out = NULL;
	s->g = g;
	s->state = xcalloc(alloc, sizeof(*s->state));
	s->pending = xcalloc(alloc, sizeof(*s->pending));
	s->queue = xmalloc(alloc * sizeof(*s->queue));
	s->stack = xmalloc(alloc * sizeof(*s->stack));
	for (size_t i = 0; i < g->n; i++) {
		const struct dep_list *p = &g->hosts[i].providers;

		if (!selected[i])
			continue;
		for (size_t j = 0; j < p->nr; j++)
			if (selected[p->v[j].host])
				s->pending[i]++;
	}
	if (!sched_acyclic(s, selected)) {
		ret = find_cycle(g, selected, NULL);
		assert(ret < 0);
		goto out;
	}
	s->count[GRAPH_UNSELECTED] = g->n;
	for (size_t i = 0; i < g->n; i++) {
		if (!selected[i])
			continue;
		if (s->pending[i]) {
			sched_set(s, i, GRAPH_WAITING);
		} else {
			sched_set(s, i, GRAPH_READY);
			s->queue[s->tail++] = i;
		}
	}
	*out = s;
	s = NULL;
out:
	graph_sched_free(s);
	return ret;
}

void graph_sched_free(struct graph_sched *s)
{
	if (!s)
		return;
	free(s->state);
	free(s->pending);
	free(s->queue);
	free(s->stack);
	free(s);
}

size_t graph_sched_next(struct graph_sched *s, size_t *out, size_t max)
{
	size_t k = 0;

	while (k < max && s->head < s->tail) {
		size_t h = s->queue[s->head++];

		/* a ready host failed before it was handed out stays behind */
		if (s->state[h] != GRAPH_READY)
			continue;
		sched_set(s, h, GRAPH_RUNNING);
		out[k++] = h;
	}
	return k;
}

void graph_sched_done(struct graph_sched *s, size_t host)
{
	const struct dep_list *c;

	assert(host < s->g->n && s->state[host] == GRAPH_RUNNING);
	sched_set(s, host, GRAPH_DONE);
	c = &s->g->hosts[host].consumers;
	for (size_t j = 0; j < c->nr; j++) {
		size_t h = c->v[j].host;

		/* skipped consumers stay skipped; unselected ones wait for nothing */
		if (s->state[h] != GRAPH_WAITING)
			continue;
		assert(s->pending[h] > 0);
		if (--s->pending[h] == 0) {
			sched_set(s, h, GRAPH_READY);
			s->queue[s->tail++] = h;
		}
	}
}

size_t graph_sched_failed(struct graph_sched *s, size_t host, size_t *skipped_out, size_t max)
{
	size_t top = 0, nskipped = 0;

	assert(host < s->g->n);
	assert(s->state[host] == GRAPH_RUNNING || s->state[host] == GRAPH_READY ||
		s->state[host] == GRAPH_WAITING);
	assert(max == 0 || skipped_out);
	sched_set(s, host, GRAPH_FAILED);
	s->stack[top++] = host;
	while (top) {
		const struct dep_list *c = &s->g->hosts[s->stack[--top]].consumers;

		for (size_t j = 0; j < c->nr; j++) {
			size_t h = c->v[j].host;

			/*
			 * A selected consumer cannot have started: this provider
			 * (or one between) is not done.
			 */
			assert(s->state[h] == GRAPH_UNSELECTED || s->state[h] == GRAPH_WAITING ||
				s->state[h] == GRAPH_SKIPPED || s->state[h] == GRAPH_FAILED);
			if (s->state[h] != GRAPH_WAITING)
				continue;
			sched_set(s, h, GRAPH_SKIPPED);
			if (nskipped < max)
				skipped_out[nskipped] = h;
			nskipped++;
			s->stack[top++] = h;
		}
	}
	return nskipped;
}

bool graph_sched_finished(const struct graph_sched *s)
{
	return s->count[GRAPH_RUNNING] == 0 && s->count[GRAPH_READY] == 0;
}

enum graph_state graph_sched_state(const struct graph_sched *s, size_t host)
{
	assert(host < s->g->n);
	return (enum graph_state)s->state[host];
}

size_t graph_sched_count(const struct graph_sched *s, enum graph_state state)
{
	assert((unsigned)state < GRAPH_NSTATES);
	return s->count[state];
}
