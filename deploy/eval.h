/*
 * deploy/eval.h: evaluating the selected hosts' systems, each alone, in a
 * pool of evaluator processes, within a memory bound, and not twice.
 *
 * A NixOS system costs seconds of CPU and hundreds of MB to evaluate, and
 * hosts share no evaluation work; one evaluator holding a whole fleet grows
 * with it until the machine runs out of memory. So every host is evaluated
 * by its own `nix eval` (constel's fixed expression, the host's flake, file
 * and attribute path as JSON data in a private file: no inventory value is
 * ever parsed as Nix code), `jobs` of them at once:
 *
 *   - a host that does not evaluate fails alone, with Nix's own message,
 *     and costs the others nothing;
 *   - an evaluator's resident memory is watched while it runs
 *     (common/proc.h, `max_rss_kb`); one that passes `max_memory_mb` is
 *     killed and its host fails with that reason. Each host has an
 *     evaluator of its own, so nothing of one host's evaluation is held
 *     while another's runs: the peak is `jobs` evaluators, whatever the
 *     size of the fleet. (Evaluating several hosts per process would save
 *     Nix's start and the flake's loading, about 30 ms a host on the test
 *     fleet against seconds of evaluation, and would hold every earlier
 *     host's memory: not worth it, see tests/bench/results/eval.txt.)
 *   - a host whose sources are one commit (opts.commit: the caller says the
 *     working tree is clean, or the flake reference is pinned to it) is
 *     evaluated as that commit exactly (a folder of the clean working tree
 *     becomes `git+file://REPO?rev=SHA[&dir=SUB]`: Nix would take the bare
 *     path for a `path:` flake, untracked files and all), and when its
 *     flake locks all its inputs (or has none), looked up in the evaluation
 *     cache first (deploy/evalcache.h) and recorded in it after. A cached
 *     derivation no longer in the store is evaluated again.
 *
 * Streaming: opts.evaluated is called once per item, as soon as that item
 * is evaluated (or failed, or came from the cache), while other items may
 * still be evaluating: a caller can start building and deploying a host
 * then. It runs on the thread that evaluated the item (an evaluation
 * worker, or eval_start()'s caller for cached items), with no lock of this
 * module held; the item's fields are final when it is called, and nothing
 * here touches the item again. deploy/stream.c streams this way: its
 * callback, under the runner's lock, fails the host (its dependents are
 * skipped) or queues it for its build group's builder thread. The
 * evaluation runs in the order of set->items: put providers first to start
 * them first (stream.c does). eval_wait()'s counts are the "evaluating
 * 12/40" of progress.
 *
 * Lifecycle: eval_start(), then eval_wait() as long as it returns true
 * (for progress; optional), then eval_finish(), which waits for the end.
 * Workers block every signal and never print; each evaluation's command
 * line, Nix's standard error and constel's verdict go to the log given to
 * eval_finish(), whole and in item order.
 */
#ifndef CONSTEL_EVAL_H
#define CONSTEL_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "deploy/build.h"

struct eval;

/*
 * Starts evaluating every item of `set` that has neither a derivation nor
 * an error yet, with the options in set->eval. Cached items are done when
 * it returns. *out is the caller's, for eval_finish(). Never fails: what
 * cannot be evaluated is an error of its item.
 */
void eval_start(struct eval **out, struct build_set *set);

/*
 * Waits up to `timeout_ms` for an item to finish; tells how many are done
 * out of how many there are to do. False once every item is done.
 */
bool eval_wait(struct eval *e, int timeout_ms, size_t *done, size_t *total);

/* Starts no further evaluation (those running finish); the rest stay unevaluated. */
void eval_stop(struct eval *e);

/* Waits for every item, appends the evaluations' log to `log`, frees `e`. */
void eval_finish(struct eval *e, struct buf *log);

/* Evaluates one item alone, now, without the cache (build_eval_drv); `opts` may be NULL. 0 or -1.
 */
int eval_item(const struct build_set_eval *opts, struct build_item *item, struct buf *log);

/*
 * An inventory from Nix (`constel -i FLAKE#ATTR`): evaluates the attribute
 * `attr` (as written after '#': `constellation`, `a."b.c"`) of the flake
 * `ref` to JSON in one evaluator of its own, constel's fixed expression
 * with the flake reference and the attribute path as data, within
 * eval->max_memory_mb. A flake that is a folder of the repository `repo`
 * is read from git, as Nix's command line reads it (`git+file://REPO?dir=SUB`);
 * when the working tree is clean at `commit` (NULL: it is not), as that
 * commit (as hosts are), and, when it locks every input, kept in the
 * evaluation cache, so that the same commit is not evaluated again (*cached).
 */
struct eval_flake_opts {
	const char *ref;  /* an absolute folder or a flake URL */
	const char *attr; /* the attribute path */
	const char *repo, *commit;
	const char *root;      /* what the flake's source is a copy of (NULL: not local) */
	const char *cache_dir; /* NULL: cache_dir() */
	bool no_cache;
	const struct build_set_eval *eval; /* jobs and memory bound; may be NULL */
};

/*
 * The attribute is evaluated in parts, as systems are: first all of it but
 * its `hosts`, and their names; then each host's value by an evaluator of
 * its own, eval->jobs at once (default: the online CPUs), so that no
 * process holds every host's configuration, and a host that does not
 * evaluate is reported alone. (A value with no attribute set `hosts` is
 * evaluated whole.)
 *
 * On success 0 with *value (the attribute's value) and *pos (the positions
 * beside it, see inventory_load_json_errors()), both the caller's. Else -1.
 * Either way *failures is the caller's array of what did not evaluate,
 * [{"attribute": "constellation.hosts.H" or null for the whole, "message":
 * Nix's reason in one line, with its position}]. The command lines and
 * Nix's output go to `log`.
 */
int eval_flake_json(const struct eval_flake_opts *o, json_t **value, json_t **pos, bool *cached,
	json_t **failures, struct buf *log);

/* ---- for the unit tests ---- */

/* The attribute path as the inventory writes it (a."b.c".d), as a JSON array; NULL if not UTF-8. */
json_t *eval__attr_path(const char *attr);

#endif
