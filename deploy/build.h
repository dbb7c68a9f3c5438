/*
 * deploy/build.h: evaluating and building the selected hosts' systems.
 *
 * build_plan() decides where each selected host's closure is built and
 * refuses, before anything runs, an architecture nothing can build:
 *
 *   BUILD_LOCAL    on this machine: its own system, or one of the
 *                  `extra-platforms` its Nix is configured with (binfmt);
 *   BUILD_BUILDER  by this machine's Nix, delegated to a `builders:` entry
 *                  (`--builders ssh://SPEC ARCH`, Nix's own remote building);
 *   BUILD_TARGET   on the host itself: only the derivation is evaluated here
 *                  (build_eval_drv), the runner copies it and realises it
 *                  there over the host's session.
 *
 * build_eval() evaluates every selected host's derivation and output path,
 * each host by an evaluator process of its own, several at once, within a
 * memory bound, and from the evaluation cache when the sources are an
 * unchanged commit: deploy/eval.h says how, and how a caller can act on
 * each host as soon as it is evaluated. The options are set->eval, which
 * the caller fills after build_plan() (zero: the defaults).
 * build_run() then realises the BUILD_LOCAL and BUILD_BUILDER hosts, one
 * `nix-store --realise --keep-going` per (architecture, builder) group, so
 * Nix builds a group's hosts in parallel and a host that does not build
 * fails alone.
 *
 * Only selected hosts are evaluated: a broken unrelated host never blocks a
 * deploy.
 */
#ifndef CONSTEL_BUILD_H
#define CONSTEL_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "inventory/inventory.h"

enum build_where { BUILD_LOCAL, BUILD_BUILDER, BUILD_TARGET };

/* What is kept of Nix's output per evaluation or build command. */
#define NIX_OUTPUT_MAX (4u << 20)

struct build_item {
	size_t host; /* index into the inventory */
	enum build_where where;
	char *builder;	   /* BUILD_BUILDER: the spec, else NULL */
	char *installable; /* for messages: `FLAKE#ATTR`, or ATTR with `file` */
	char *ref;	   /* the flake reference, or NULL with `file` */
	char *file;	   /* the plain Nix file, or NULL for a flake */
	char *attr;	   /* the host's attribute path, as the inventory has it */
	char *out_path;	   /* the system built, once known */
	char *drv_path;	   /* the derivation, once known */
	char *error;	   /* why the build failed, NULL when it did not */
	double seconds;
	double eval_seconds; /* the evaluation's wall time; 0 when cached */
	size_t eval_peak_mb; /* the evaluator's peak resident memory */
	bool cached;	     /* drv_path and out_path came from the evaluation cache */
};

/* --eval-max-memory's default: what nix-eval-jobs bounds a worker with. */
#define BUILD_EVAL_MAX_MEMORY_MB 4096

/* How build_eval() evaluates (deploy/eval.h). Zero is the defaults. */
struct build_set_eval {
	size_t jobs;	       /* evaluator processes at once; 0: the online CPUs */
	size_t max_memory_mb;  /* each evaluator's bound; 0: BUILD_EVAL_MAX_MEMORY_MB */
	bool no_cache;	       /* neither read nor write the evaluation cache */
	const char *cache_dir; /* the cache's folder; NULL: cache_dir() (common/util.h) */
	/*
	 * The inventory's git repository and the commit the set's flakes are
	 * at: its HEAD when the working tree is clean (flakes in the working
	 * tree are then evaluated as that commit), or the commit the
	 * references are pinned to. NULL: nothing is cached.
	 */
	const char *repo;
	const char *commit;
	/* Called as each item is evaluated (deploy/eval.h says where and how). */
	void (*evaluated)(void *data, struct build_item *item);
	void *data;
};

struct build_set {
	struct build_item *items;
	size_t nitems;
	char *system;		 /* this machine's Nix system */
	struct strvec platforms; /* system + extra-platforms */
	struct build_set_eval eval;
	const char *ssh_config; /* how builders that are inventory hosts are reached; NULL: ~/.ssh/config */
};

/*
 * Decides where each selected host builds. `build_on` ("local", "target" or
 * NULL for the inventory's choice) overrides every host. `flake_override`,
 * when not NULL, replaces the flake reference of every host (used to build
 * an exact git revision). Returns 0, or -1 with a message naming the host
 * and the architecture nothing can build.
 */
/* build_plan's flags: build under emulation even where builders: declares a native builder. */
#define BUILD_ALLOW_EMULATION 1u
int build_plan(struct build_set *set, const struct inventory *inv, const bool *selected,
	const char *build_on, const char *flake_override, unsigned flags);

/* One line per host saying where it will be built, for the user. */
void build_describe(const struct build_set *set, const struct inventory *inv, struct buf *out);

/*
 * Evaluates every item not evaluated yet (drv_path and out_path, or error)
 * without building, appending what Nix said to `log`. Returns the number
 * of items that failed.
 */
size_t build_eval(struct build_set *set, struct buf *log);

/*
 * Evaluates, then builds every BUILD_LOCAL and BUILD_BUILDER item, filling
 * out_path or error. Nix's output is appended to `log` (bounded). Returns
 * the number of items that failed.
 */
size_t build_run(struct build_set *set, const struct inventory *inv, struct buf *log);

/*
 * Evaluates the derivation of one item without building it (for
 * BUILD_TARGET), filling drv_path, unless build_eval() did. 0 or -1 with
 * the error.
 */
int build_eval_drv(struct build_item *item, struct buf *log);

/*
 * signing_key (inventory defaults): signs the closures of paths[0..n) in
 * this machine's store (`nix store sign --recursive`; a .drv is signed
 * itself, not its outputs). 0 when there is no key, or -1 with the error.
 */
int build_sign(const struct inventory *inv, const char *const *paths, size_t n);

/* Whether two items build together: the same place, architecture and builder. */
bool build_same_group(
	const struct build_item *a, const struct build_item *b, const struct inventory *inv);

/*
 * Realises evaluated items of one group with one `nix-store --realise
 * --keep-going`, so Nix builds them in parallel and a failing one does not
 * stop the others; then asks which outputs exist to tell who failed (their
 * error is set). Nix's output is appended to `log`.
 */
void build_realise(const struct build_set *set, const struct inventory *inv,
	struct build_item **items, size_t n, struct buf *log);

/* The item of a host, or NULL when the host is not in the set. */
struct build_item *build_set_item(struct build_set *set, size_t host);

void build_set_release(struct build_set *set);

#endif
