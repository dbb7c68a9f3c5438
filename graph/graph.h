/*
 * graph/graph.h: the host graph and the ready queue a parallel runner drives.
 *
 * Hosts are the indices 0..n-1, each with a name. An edge goes from a
 * consumer to a provider: "consumer depends on provider", so the provider is
 * deployed first. Each edge carries a label saying which inventory entry
 * made it (`uses auth at constellation.yaml:12:9`); the graph never looks
 * inside it, it only prints it when it reports a cycle. The graph knows
 * nothing of YAML, SSH or Nix.
 *
 * Ownership: graph_new() copies the names, graph_add_edge() the label and
 * graph_set_tags() the tags; the caller keeps its own. Every string or array
 * the graph returns is borrowed and valid until graph_free().
 *
 * Cost: every operation is linear in hosts plus edges (selection also in the
 * number of patterns times hosts), and none recurses, so a chain of tens of
 * thousands of hosts is fine.
 *
 * Threads: build the graph in one thread. Once built, a graph is never
 * modified by the functions taking a `const struct graph *`, so any number
 * of threads may call them at once. The graph must not change (no
 * graph_add_edge, graph_set_tags) while a struct graph_sched uses it.
 *
 * Host indices given to any function must be < graph_nhosts(); breaking
 * that, or any other precondition stated here, is a programmer error caught
 * by an assert, not a returned error.
 */
#ifndef CONSTEL_GRAPH_H
#define CONSTEL_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

struct graph;

/*
 * One end of an edge, as seen from a host: `host` is the provider (in
 * graph_providers) or the consumer (in graph_consumers), `label` the label
 * the edge was added with.
 */
struct graph_dep {
	size_t host;
	const char *label;
};

/*
 * A graph of `nhosts` hosts named names[0..nhosts-1] (copied), without
 * edges. Names must be non-empty and distinct.
 */
struct graph *graph_new(size_t nhosts, const char *const *names);
/* Frees the graph and everything it owns; accepts NULL. */
void graph_free(struct graph *g);

/*
 * `consumer` depends on `provider`; `label` is copied (NULL: none, for a
 * caller that makes labels only once a cycle needs them). Adding an edge that
 * already exists keeps the first one and its label. A host may depend on
 * itself: that is a cycle, which graph_check_cycles() reports. Adding each
 * consumer's edges together costs O(1) per edge; coming back to a consumer
 * whose edges were added earlier costs its number of providers once.
 */
void graph_add_edge(struct graph *g, size_t consumer, size_t provider, const char *label);

/* The host's tags, for `@tag` selection (copied; replaces earlier ones). */
void graph_set_tags(struct graph *g, size_t host, const char *const *tags, size_t ntags);

size_t graph_nhosts(const struct graph *g);
const char *graph_name(const struct graph *g, size_t host);
/* The index of the host named `name`, or CONSTEL_ENOTFOUND (no message set). */
int graph_find(const struct graph *g, const char *name, size_t *host);

/*
 * The hosts `host` depends on (providers) and the hosts that depend on it
 * (consumers), each in the order the edges were added; *n is set to their
 * number. The array is borrowed, and NULL when *n is 0.
 */
const struct graph_dep *graph_providers(const struct graph *g, size_t host, size_t *n);
const struct graph_dep *graph_consumers(const struct graph *g, size_t host, size_t *n);

/*
 * 0 if the graph has no cycle. Otherwise -1, with a one-line summary in
 * error_last() and, if msg_out is not NULL, the whole report in *msg_out
 * (owned by the caller; set to NULL on success):
 *
 *   dependency cycle: a → b → c → a
 *     a → b: <label of the edge a → b>
 *     b → c: <label of the edge b → c>
 *     c → a: <label of the edge c → a>
 *
 * with no final newline. "a → b" reads "a depends on b". The cycle starts
 * at its host with the lowest index; a self-loop reads "a → a" and has one
 * line. Only one cycle is reported, even when there are several. The
 * summary in error_last() is its first line, cut at the error slot's size
 * on very long cycles; *msg_out is never cut.
 */
int graph_check_cycles(const struct graph *g, char **msg_out);

/*
 * Deployment waves: wave_out[h] (an array of graph_nhosts() ints) is 0 for
 * a host without providers, else 1 + the highest wave of its providers;
 * *nwaves is the number of waves (0 for an empty graph). Hosts of one wave
 * never depend on each other. On a cycle, returns -1 as
 * graph_check_cycles() does, without the full report.
 */
int graph_waves(const struct graph *g, int *wave_out, size_t *nwaves);

/*
 * The hosts of `set` (a mask of graph_nhosts() bools, or NULL for every
 * host) in dependency order: providers before consumers, or consumers
 * before providers (what --rollback-fleet restores) if `consumers_first`.
 * The order holds through hosts outside the set: if a depends on x which
 * depends on b, a and b are ordered even when x is left out. Hosts come
 * wave by wave (the last wave first if `consumers_first`), by index within
 * a wave. Fills out[] (room for graph_nhosts() indices) and sets *nout.
 * -1 on a cycle, as graph_waves().
 */
int graph_order(
	const struct graph *g, const bool *set, bool consumers_first, size_t *out, size_t *nout);

/*
 * Fills selected[] (graph_nhosts() bools) with the hosts matching any of
 * the patterns:
 *
 *   - `name`: the host of that name;
 *   - a glob (holds `*`, `?` or `[`): every host whose name it matches,
 *     as fnmatch(3) does;
 *   - `@tag`: every host carrying the tag.
 *
 * No patterns select every host. With `with_deps`, the providers of the
 * selected hosts are added, transitively. A pattern that matches nothing is
 * an error naming it (CONSTEL_ENOTFOUND; for an unknown name, with a "did
 * you mean" when a host name is close by the rule of common/names.h), and
 * an empty pattern is -1; on error selected[] holds no meaning.
 */
int graph_select(const struct graph *g, const char *const *patterns, size_t npatterns,
	bool with_deps, bool *selected);

/*
 * The ready queue: which selected hosts may start now.
 *
 * The runner asks for ready hosts with graph_sched_next(), which marks them
 * running, and reports each one's end with graph_sched_done() or
 * graph_sched_failed(). A host becomes ready when all its selected providers
 * are done; edges to unselected providers are ignored, as those are taken
 * to be deployed already. When a host fails, every selected host that
 * depends on it, directly or through other selected hosts, is skipped.
 *
 * Hosts become ready in a stable order: first the hosts without selected
 * providers by index, then each host as its last provider finishes.
 *
 * Not thread-safe: the runner serialises every call on one struct
 * graph_sched (a mutex held around each call is enough). Calls do no I/O and
 * take time linear in the edges they touch, so the lock is held briefly.
 */
enum graph_state {
	GRAPH_UNSELECTED, /* not part of this run */
	GRAPH_WAITING,	  /* some selected provider is not done yet */
	GRAPH_READY,	  /* may start; not handed out yet */
	GRAPH_RUNNING,	  /* handed out by graph_sched_next() */
	GRAPH_DONE,
	GRAPH_FAILED,
	GRAPH_SKIPPED, /* a provider failed, so it was never started */
};
#define GRAPH_NSTATES 7

/* "waiting", "ready", ...: a static string. */
const char *graph_state_name(enum graph_state state);

struct graph_sched;

/*
 * A queue over the hosts of `selected` (graph_nhosts() bools, copied).
 * Returns 0 and the queue in *out, to be freed with graph_sched_free(); or
 * -1 if the selected hosts form a cycle, as graph_check_cycles() reports it
 * in error_last(). `g` is borrowed and must outlive the queue.
 */
int graph_sched_new(const struct graph *g, const bool *selected, struct graph_sched **out);
/* Accepts NULL. */
void graph_sched_free(struct graph_sched *s);

/*
 * Hands out up to `max` ready hosts, marking them running: fills out[] and
 * returns how many (0 when none is ready now).
 */
size_t graph_sched_next(struct graph_sched *s, size_t *out, size_t max);
/* `host`, which was running, succeeded: its selected consumers may become ready. */
void graph_sched_done(struct graph_sched *s, size_t host);
/*
 * `host` failed: every selected host depending on it, transitively, is
 * marked skipped (none of them has started). `host` is usually running, but
 * may also be one not started yet (waiting or ready), e.g. when its build
 * failed before it could be handed out; it is then never handed out. Returns the
 * number of hosts skipped by this call and fills the first `max` of them
 * into skipped_out[] (NULL if max is 0), so the runner can report "skipped
 * because 'host' failed". A host already skipped is not counted again.
 */
size_t graph_sched_failed(struct graph_sched *s, size_t host, size_t *skipped_out, size_t max);
/*
 * True when nothing is running and nothing is ready. Once the runner has
 * taken every ready host, this means every selected host is done, failed or
 * skipped.
 */
bool graph_sched_finished(const struct graph_sched *s);
enum graph_state graph_sched_state(const struct graph_sched *s, size_t host);
/* How many hosts are in `state` (GRAPH_UNSELECTED counts the others). */
size_t graph_sched_count(const struct graph_sched *s, enum graph_state state);

#endif
