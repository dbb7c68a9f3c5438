/*
 * deploy/eval.c: evaluating hosts, each alone, several at once, within a
 * memory bound, and not twice. See deploy/eval.h.
 */
#include "deploy/eval.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/pool.h"
#include "common/proc.h"
#include "deploy/evalcache.h"
#include "deploy/provenance.h"

/* What one evaluator prints is kept for the log, up to this much. */
/* nix-store --check-validity is given at most this many paths at once. */
#define VALIDITY_BATCH 256

/*
 * The evaluation, as fixed text: it reads the items from items.json next to
 * itself, so that every flake reference, file and attribute name reaches
 * Nix as data (a string of JSON), never as Nix code to parse. One
 * [ drvPath outPath locked ] per item, in order; `locked` (asked for items
 * that say where their flake.lock is) tells that the flake has no inputs,
 * or that its lock file locks every one: its evaluation then depends on its
 * commit alone, and may be cached.
 */
#define NIX_LOCKED                                                                                 \
	"  locked = flake: lockFile:\n"                                                             \
	"    let\n"                                                                                 \
	"      names = builtins.attrNames (flake.inputs or { });\n"                                 \
	"      path = flake.sourceInfo.outPath + \"/\" + lockFile;\n"                               \
	"      lock = builtins.fromJSON (builtins.readFile path);\n"                                \
	"      root = if lock ? nodes && lock ? root\n"                                             \
	"        then lock.nodes.${lock.root}.inputs or { } else { };\n"                            \
	"    in\n"                                                                                  \
	"    names == [ ] || (builtins.pathExists path\n"                                           \
	"      && builtins.all (n: builtins.hasAttr n root) names);\n"

static const char eval_nix[] =
	"# written by constel: the systems of the hosts in ./items.json, in order\n"
	"let\n"
	"  items = builtins.fromJSON (builtins.readFile ./items.json);\n"
	"  top = item:\n"
	"    if item ? file then\n"
	"      (let x = import item.file; in if builtins.isFunction x then x { } else x)\n"
	"    else\n"
	"      builtins.getFlake item.flake;\n" NIX_LOCKED "  one = item:\n"
	"    let\n"
	"      t = top item;\n"
	"      s = builtins.foldl' (v: name: builtins.getAttr name v) t item.attrPath;\n"
	"    in\n"
	"    [ s.drvPath s.outPath (item ? lock && locked t item.lock) ];\n"
	"in\n"
	"map one items\n";

/*
 * An inventory from Nix, as fixed text like eval_nix: the attribute
 * item.attrPath of the flake item.flake. Asked without item.host, its
 * value but for `hosts` and the names of its hosts (split), or, when it
 * has no `hosts` to split, all of it; asked with item.host, that host's
 * value alone: each host is evaluated by an evaluator of its own, as
 * systems are. With each value, whether the flake locks every input
 * (item.lock), and beside it the positions Nix knows of
 * its attributes (builtins.unsafeGetAttrPos; a file of the flake's source
 * in the store is named in item.root, the folder it was copied from, so
 * that an error points at the file the user edits), as inventory/internal.h's
 * inventory__jdoc_build() reads them. Derivations are values, not sets to
 * walk into.
 */
static const char inventory_nix[] =
	"# written by constel: an inventory, the attribute of a flake in ./items.json\n"
	"let\n"
	"  item = builtins.head (builtins.fromJSON (builtins.readFile ./items.json));\n"
	"  flake = builtins.getFlake item.flake;\n" NIX_LOCKED
	"  value = builtins.foldl' (v: name: builtins.getAttr name v) flake item.attrPath;\n"
	"  src = toString flake.sourceInfo.outPath;\n"
	"  n = builtins.stringLength src;\n"
	"  here = f: if item ? root && builtins.substring 0 (n + 1) f == src + \"/\"\n"
	"    then item.root + builtins.substring n (builtins.stringLength f) f else f;\n"
	"  at = k: v: let p = builtins.unsafeGetAttrPos k v; in\n"
	"    if p == null then null else p // { file = here p.file; };\n"
	"  walk = v:\n"
	"    if builtins.isList v then { l = map walk v; }\n"
	"    else if !(builtins.isAttrs v) || v ? outPath then null\n"
	"    else {\n"
	"      p = builtins.mapAttrs (k: _: at k v) v;\n"
	"      c = builtins.mapAttrs (_: walk) v;\n"
	"    };\n"
	"  isLocked = item ? lock && locked flake item.lock;\n"
	"  hosts = value.hosts;\n"
	"  split = builtins.isAttrs value && value ? hosts && builtins.isAttrs hosts\n"
	"    && !(hosts ? outPath);\n"
	"  rest = builtins.removeAttrs value [ \"hosts\" ];\n"
	"in\n"
	"if item ? host then\n"
	"  let v = builtins.getAttr item.host hosts; in { value = v; pos = walk v; }\n"
	"else if split then {\n"
	"  split = true; value = rest; pos = walk rest; names = builtins.attrNames hosts;\n"
	"  hostsPos = at \"hosts\" value; hostPos = builtins.mapAttrs (k: _: at k hosts) hosts;\n"
	"  locked = isLocked;\n"
	"} else { split = false; inherit value; pos = walk value; locked = isLocked; }\n";

json_t *eval__attr_path(const char *attr)
{
	json_t *path = json_array();
	const char *p = attr;

	/*
	 * Segments separated by '.', each a name or a double-quoted string
	 * (nixosConfigurations."a.b" is two segments, the second "a.b"). The
	 * inventory refuses anything else; whatever reaches here is still
	 * only ever a name to look up.
	 */
	while (*p) {
		const char *seg = p, *end;

		if (*p == '"') {
			seg = p + 1;
			end = strchr(seg, '"');
			if (!end)
				end = seg + strlen(seg);
			p = *end ? end + 1 : end;
		} else {
			end = p + strcspn(p, ".");
			p = end;
		}
		/* json_stringn() is NULL for what is not UTF-8: Nix could not read it */
		if (json_array_append_new(path, json_stringn(seg, (size_t)(end - seg))) < 0) {
			json_decref(path);
			return NULL;
		}
		if (*p == '.')
			p++;
	}
	return path;
}

/* One item of items.json: { "flake": REF } or { "file": PATH }, "attrPath", maybe "lock". */
static json_t *item_json(const struct build_item *it, const char *lock)
{
	json_t *o, *path = eval__attr_path(it->attr);
	json_t *src = json_string(it->file ? it->file : it->ref);

	if (!src || !path) {
		json_decref(src);
		json_decref(path);
		return NULL;
	}
	o = json_object();
	json_object_set_new(o, it->file ? "file" : "flake", src);
	json_object_set_new(o, "attrPath", path);
	if (lock)
		json_object_set_new(o, "lock", json_string(lock));
	return o;
}

/* Writes a new file only we can read; never through a link, never over a file. */
static int write_private(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ret = 0;

	if (fd < 0)
		return error_set("cannot create '%s': %s", path, strerror(errno));
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = error_set("cannot write '%s': %s", path,
				n < 0 ? strerror(errno) : "no space");
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && !ret)
		ret = error_set("cannot write '%s': %s", path, strerror(errno));
	return ret;
}

/* A new private folder (0700) under $TMPDIR for one evaluation's files, or NULL. */
static char *eval_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = xasprintf("%s/constel-eval.XXXXXX", tmp && *tmp ? tmp : "/tmp");

	if (!mkdtemp(dir)) {
		error_set("cannot create a folder '%s': %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* Removes what eval_dir() made and the files written into it. */
static void eval_dir_remove(char *dir)
{
	static const char *const files[] = {"eval.nix", "items.json"};

	if (!dir)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *f = xasprintf("%s/%s", dir, files[i]);

		unlink(f);
		free(f);
	}
	rmdir(dir);
	free(dir);
}

/*
 * Why Nix could not evaluate, in one line: the last line that starts with
 * "error: " (Nix 2.8 prints one; later versions print the trace first and
 * the cause last), and the position under it unless that is in constel's
 * own expression `expr_file`. Else the last lines Nix printed. Caller frees.
 */
static char *eval_error(const struct buf *err, const char *expr_file)
{
	const char *text = err->data ? err->data : "", *cause = NULL, *p;
	struct buf b = BUF_INIT(0);

	for (p = text; *p; p = strchrnul(p, '\n'), p += *p == '\n') {
		const char *l = p + strspn(p, " ");

		if (!strncmp(l, "error: ", 7))
			cause = l + 7;
	}
	if (!cause || !*cause || *cause == '\n')
		return buf_tail_one_line(err, 3);
	buf_add(&b, cause, (size_t)(strchrnul(cause, '\n') - cause));
	p = strchrnul(cause, '\n');
	for (int i = 0; i < 3 && *p; i++) {
		const char *l = p + 1 + strspn(p + 1, " "), *e = strchrnul(l, '\n');

		if (!strncmp(l, "at ", 3) && e - l > 4 && e[-1] == ':') {
			if (!memmem(l, (size_t)(e - l), expr_file, strlen(expr_file)))
				buf_printf(&b, " (at %.*s)", (int)(e - l - 4), l + 3);
			break;
		}
		p = e;
	}
	return buf_detach(&b);
}

/* Fails the item: "evaluation failed: WHY", made safe for a terminal. */
static void item_fail(struct build_item *it, const char *why)
{
	char *safe = text_sanitize(why);

	free(it->error);
	it->error = xasprintf("evaluation failed: %s", safe);
	free(safe);
}

static size_t max_memory_mb(const struct build_set_eval *opts)
{
	return opts && opts->max_memory_mb ? opts->max_memory_mb : BUILD_EVAL_MAX_MEMORY_MB;
}

/* What one run of `nix eval` cost. */
struct nix_cost {
	double seconds;
	size_t peak_mb;
};

/*
 * Runs constel's fixed expression `expr` (written as eval.nix, `items` as
 * items.json beside it, in a new private folder) in one `nix eval --json`,
 * within `max_mb`. On success *result is what it printed. Else -1 with *why
 * (Nix's reason in one line; the caller frees), or CONSTEL_ELIMIT when the
 * evaluator passed the bound. What ran and what Nix said go to `log`.
 */
static int nix_eval_json(const char *expr, const char *items, size_t max_mb, struct buf *log,
	json_t **result, char **why, struct nix_cost *cost)
{
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(NIX_OUTPUT_MAX);
	const char *argv[] = {PROC_NIX, "eval", "--impure", "--json", "--file", NULL, NULL};
	char *dir = NULL, *expr_file = NULL, *items_file = NULL, *line;
	struct proc_cmd cmd = {.argv = argv, .out = &out, .err = &err};
	json_error_t jerr;
	double start;
	int ret = -1;

	*result = NULL;
	*why = NULL;
	if (!(dir = eval_dir())) {
		*why = xstrdup(error_last());
		goto out;
	}
	expr_file = xasprintf("%s/eval.nix", dir);
	items_file = xasprintf("%s/items.json", dir);
	if (write_private(items_file, items, strlen(items)) < 0 ||
		write_private(expr_file, expr, strlen(expr)) < 0) {
		*why = xstrdup(error_last());
		goto out;
	}
	argv[7] = expr_file;
	line = proc_describe(argv);
	buf_printf(log, "$ %s\n# %s: %s\n", line, items_file, items);
	free(line);
	cmd.max_rss_kb = max_mb * 1024;
	start = now_seconds();
	ret = proc_cmd_run(&cmd);
	cost->seconds = now_seconds() - start;
	cost->peak_mb = (cmd.peak_rss_kb + 1023) / 1024;
	buf_add(log, err.data ? err.data : "", err.len);
	if (ret == CONSTEL_ELIMIT)
		goto out;
	if (ret < 0) {
		*why = err.len ? eval_error(&err, expr_file) : xstrdup(error_last());
		goto out;
	}
	if (!(*result = json_loadb(out.data ? out.data : "", out.len, 0, &jerr))) {
		*why = xstrdup("unexpected output of 'nix eval'");
		ret = -1;
	}
out:
	eval_dir_remove(dir);
	free(expr_file);
	free(items_file);
	buf_release(&out);
	buf_release(&err);
	return ret;
}

/*
 * One `nix eval` of one item, alone, within the memory bound. On success
 * its derivation and output path are filled in and *locked says whether
 * the flake locks all its inputs (only asked when `lock` names its lock
 * file); else its error. What ran and what Nix said go to `log`. 0 or -1.
 */
static int eval_one(const struct build_set_eval *opts, struct build_item *it, const char *lock,
	bool *locked, struct buf *log)
{
	char *text = NULL, *why = NULL;
	json_t *list = NULL, *root = NULL, *o, *res;
	struct nix_cost cost = {0};
	const char *drv, *path;
	int ret;

	*locked = false;
	if (!(o = item_json(it, lock))) {
		item_fail(it, "the attribute path is not valid UTF-8 text");
		goto out;
	}
	list = json_array();
	json_array_append_new(list, o);
	text = json_dumps(list, JSON_COMPACT);
	ret = nix_eval_json(eval_nix, text, max_memory_mb(opts), log, &root, &why, &cost);
	it->eval_seconds = cost.seconds;
	it->eval_peak_mb = cost.peak_mb;
	if (ret == CONSTEL_ELIMIT) {
		why = xasprintf("its evaluator used %zu MB, more than the bound of %zu MB "
				"(--eval-max-memory), evaluating this host alone",
			it->eval_peak_mb, max_memory_mb(opts));
		item_fail(it, why);
		goto out;
	}
	if (ret < 0) {
		item_fail(it, why);
		goto out;
	}
	res = json_array_get(root, 0);
	drv = json_string_value(json_array_get(res, 0));
	path = json_string_value(json_array_get(res, 1));
	if (json_array_size(root) != 1 || !drv || !path) {
		item_fail(it, "unexpected output of 'nix eval'");
		goto out;
	}
	free(it->drv_path);
	free(it->out_path);
	it->drv_path = xstrdup(drv);
	it->out_path = xstrdup(path);
	*locked = json_is_true(json_array_get(res, 2));
out:
	if (it->error)
		buf_printf(log, "# %s: %s\n", it->installable, it->error);
	else
		buf_printf(log, "# %s: evaluated in %.2fs, evaluator peak %zu MB\n",
			it->installable, it->eval_seconds, it->eval_peak_mb);
	free(why);
	free(text);
	json_decref(list);
	json_decref(root);
	return it->error ? -1 : 0;
}

int eval_item(const struct build_set_eval *opts, struct build_item *item, struct buf *log)
{
	bool locked;

	return eval_one(opts, item, NULL, &locked, log);
}

/* ---- the pool ---- */

struct eval_job {
	char *key;  /* the cache key, or NULL when the item is not cached */
	char *lock; /* its flake.lock, relative to the flake's source */
	struct buf log;
};

struct eval {
	struct build_set *set;
	struct build_set_eval opts;
	struct evalcache cache;
	bool have_cache;
	struct eval_job *jobs; /* one per item of the set */
	size_t *queue;	       /* the items the workers evaluate, in order */
	size_t nqueue;
	struct pool pool;
	/* under pool.lock */
	size_t done, total;
	size_t recorded; /* entries written to the cache */
};

/* Reports an item done: the streaming hook, then the count. */
static void item_done(struct eval *e, struct build_item *it)
{
	if (e->opts.evaluated)
		e->opts.evaluated(e->opts.data, it);
}

static void pool_task(void *data, size_t task)
{
	struct eval *e = data;
	size_t i = e->queue[task];
	struct build_item *it = &e->set->items[i];
	struct eval_job *job = &e->jobs[i];
	bool locked;

	if (eval_one(&e->opts, it, job->lock, &locked, &job->log) == 0 && job->key) {
		if (!locked) {
			buf_printf(&job->log,
				"# %s: not cached: its flake does not lock every input\n",
				it->installable);
		} else if (evalcache_put(&e->cache, job->key, it->drv_path, it->out_path) < 0) {
			buf_printf(
				&job->log, "# %s: not cached: %s\n", it->installable, error_last());
		} else {
			pthread_mutex_lock(&e->pool.lock);
			e->recorded++;
			pthread_mutex_unlock(&e->pool.lock);
		}
	}
	item_done(e, it);
}

static void pool_finished(void *data, size_t task)
{
	struct eval *e = data;

	(void)task;
	e->done++;
}

static const struct pool_ops eval_pool = {
	.run = pool_task,
	.finished = pool_finished,
};

/* `nix --version`'s version ("2.8.0"), or NULL with the error set. */
static char *nix_version(void)
{
	const char *argv[] = {"nix", "--version", NULL};
	struct buf out = BUF_INIT(4096);
	char *v = NULL, *sp, *nl;

	if (proc_run(argv, &out, NULL) == 0 && out.data) {
		nl = strchr(out.data, '\n');
		if (nl)
			*nl = '\0';
		sp = strrchr(out.data, ' ');
		v = xstrdup(sp ? sp + 1 : out.data);
	} else {
		error_set("cannot ask nix its version: %s", error_last());
	}
	buf_release(&out);
	return v;
}

/*
 * A flake given as a folder of the working tree, which the caller says is
 * clean at opts.commit, is evaluated as that commit exactly
 * (`git+file://REPO?rev=SHA[&dir=SUB]`, provenance_flake_ref()): Nix takes
 * a bare path for a `path:` flake, untracked files and all, and what a
 * record says was deployed, and what the cache keys by, is the commit.
 * With the cache or without, the same is evaluated.
 */
static void pin_to_commit(struct eval *e, const bool *todo)
{
	struct build_set *set = e->set;

	if (!e->opts.repo || !e->opts.commit)
		return;
	for (size_t i = 0; i < set->nitems; i++) {
		struct build_item *it = &set->items[i];
		char *sub = NULL, *ref = NULL;

		if (!todo[i] || it->file || !it->ref || it->ref[0] != '/')
			continue;
		if (provenance_flake_at(e->opts.repo, it->ref, e->opts.commit, &sub) == 0 &&
			provenance_flake_ref(e->opts.repo, it->ref, ".", e->opts.commit, &ref) ==
				0) {
			free(it->ref);
			free(it->installable);
			it->ref = ref;
			it->installable = xasprintf("%s#%s", ref, it->attr);
		}
		free(sub);
	}
}

/*
 * The cache keys of the items that may be cached; false when none may.
 * Every item's reason not to be is in its log.
 */
static bool plan_cache(struct eval *e, const bool *todo)
{
	struct build_set *set = e->set;
	char *version = NULL;
	bool any = false;

	if (e->opts.no_cache || !e->opts.repo || !e->opts.commit)
		return false;
	for (size_t i = 0; i < set->nitems; i++) {
		struct build_item *it = &set->items[i];
		char *sub;

		if (!todo[i])
			continue;
		if (it->file) {
			buf_printf(&e->jobs[i].log,
				"# %s: not cached: a plain Nix file may read anything\n",
				it->installable);
			continue;
		}
		if (provenance_flake_at(e->opts.repo, it->ref, e->opts.commit, &sub) < 0) {
			buf_printf(&e->jobs[i].log, "# %s: not cached: %s\n", it->installable,
				error_last());
			continue;
		}
		e->jobs[i].lock = *sub ? xasprintf("%s/flake.lock", sub) : xstrdup("flake.lock");
		free(sub);
		any = true;
	}
	if (!any)
		return false;
	if (evalcache_open(&e->cache, e->opts.cache_dir) < 0 || !(version = nix_version())) {
		for (size_t i = 0; i < set->nitems; i++)
			if (e->jobs[i].lock)
				buf_printf(&e->jobs[i].log, "# %s: not cached: %s\n",
					set->items[i].installable, error_last());
		evalcache_release(&e->cache);
		return false;
	}
	e->have_cache = true;
	for (size_t i = 0; i < set->nitems; i++) {
		struct build_item *it = &set->items[i];
		json_t *attr;

		if (!e->jobs[i].lock || !(attr = eval__attr_path(it->attr)))
			continue;
		e->jobs[i].key = evalcache_key(e->opts.commit, it->ref, attr, set->system, version);
		json_decref(attr);
	}
	free(version);
	return true;
}

/*
 * Which of `paths` the store no longer holds: their indices set in
 * `invalid`. When nix-store cannot tell, every one is taken as gone.
 */
static void check_validity(char **paths, size_t n, bool *invalid)
{
	for (size_t start = 0; start < n; start += VALIDITY_BATCH) {
		size_t end = start + VALIDITY_BATCH < n ? start + VALIDITY_BATCH : n;
		struct strvec argv = STRVEC_INIT;
		struct buf out = BUF_INIT(NIX_OUTPUT_MAX);

		strvec_push(&argv, "nix-store");
		strvec_push(&argv, "--check-validity");
		strvec_push(&argv, "--print-invalid");
		for (size_t i = start; i < end; i++)
			strvec_push(&argv, paths[i]);
		if (proc_run((const char *const *)argv.v, &out, NULL) < 0) {
			for (size_t i = start; i < end; i++)
				invalid[i] = true;
		} else {
			for (char *p = out.data; p && *p;) {
				char *nl = strchrnul(p, '\n');

				for (size_t i = start; i < end; i++)
					if ((size_t)(nl - p) == strlen(paths[i]) &&
						!strncmp(p, paths[i], (size_t)(nl - p)))
						invalid[i] = true;
				p = *nl ? nl + 1 : nl;
			}
		}
		buf_release(&out);
		strvec_release(&argv);
	}
}

/* Items whose result is in the cache and whose derivation is in the store are done. */
static void serve_cached(struct eval *e, bool *todo)
{
	struct build_set *set = e->set;
	char **drvs = xcalloc(set->nitems + 1, sizeof(*drvs));
	char **outs = xcalloc(set->nitems + 1, sizeof(*outs));
	size_t *which = xcalloc(set->nitems + 1, sizeof(*which));
	bool *invalid;
	size_t n = 0;

	for (size_t i = 0; i < set->nitems; i++) {
		if (!todo[i] || !e->jobs[i].key)
			continue;
		if (evalcache_get(&e->cache, e->jobs[i].key, &drvs[n], &outs[n]) < 0)
			continue;
		which[n++] = i;
	}
	invalid = xcalloc(n + 1, sizeof(*invalid));
	if (n)
		check_validity(drvs, n, invalid);
	for (size_t k = 0; k < n; k++) {
		struct build_item *it = &set->items[which[k]];
		struct buf *log = &e->jobs[which[k]].log;

		if (invalid[k]) {
			buf_printf(log,
				"# %s: the cached %s is no longer in the store: evaluating "
				"again\n",
				it->installable, drvs[k]);
			free(drvs[k]);
			free(outs[k]);
			continue;
		}
		free(it->drv_path);
		free(it->out_path);
		it->drv_path = drvs[k];
		it->out_path = outs[k];
		it->cached = true;
		buf_printf(log, "# %s: from the evaluation cache: %s\n", it->installable,
			it->drv_path);
		todo[which[k]] = false;
		e->done++;
		item_done(e, it);
	}
	free(invalid);
	free(which);
	free(drvs);
	free(outs);
}

static size_t online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (size_t)n : 1;
}

void eval_start(struct eval **out, struct build_set *set)
{
	struct eval *e = xcalloc(1, sizeof(*e));
	bool *todo = xcalloc(set->nitems + 1, sizeof(*todo));
	size_t workers;

	e->set = set;
	e->opts = set->eval;
	if (!e->opts.jobs)
		e->opts.jobs = online_cpus();
	e->jobs = xcalloc(set->nitems + 1, sizeof(*e->jobs));
	e->queue = xcalloc(set->nitems + 1, sizeof(*e->queue));
	for (size_t i = 0; i < set->nitems; i++) {
		buf_init(&e->jobs[i].log, NIX_OUTPUT_MAX);
		todo[i] = !set->items[i].drv_path && !set->items[i].error;
		e->total += todo[i];
	}
	pool_init(&e->pool, &eval_pool, e);
	pin_to_commit(e, todo);
	if (plan_cache(e, todo))
		serve_cached(e, todo);
	for (size_t i = 0; i < set->nitems; i++)
		if (todo[i])
			e->queue[e->nqueue++] = i;
	workers = e->opts.jobs < e->nqueue ? e->opts.jobs : e->nqueue;
	pool_set_tasks(&e->pool, e->nqueue);
	if (workers)
		pool_start(&e->pool, workers);
	free(todo);
	*out = e;
}

bool eval_wait(struct eval *e, int timeout_ms, size_t *done, size_t *total)
{
	struct timespec until;
	bool going;

	timespec_in_ms(&until, timeout_ms);
	pthread_mutex_lock(&e->pool.lock);
	if (e->done < e->total && timeout_ms > 0)
		pthread_cond_timedwait(&e->pool.wake, &e->pool.lock, &until);
	*done = e->done;
	*total = e->total;
	going = e->done < e->total;
	pthread_mutex_unlock(&e->pool.lock);
	return going;
}

void eval_stop(struct eval *e)
{
	pool_stop(&e->pool);
}

void eval_finish(struct eval *e, struct buf *log)
{
	pool_join(&e->pool);
	pool_release(&e->pool);
	for (size_t i = 0; i < e->set->nitems; i++) {
		struct eval_job *job = &e->jobs[i];

		buf_add(log, job->log.data ? job->log.data : "", job->log.len);
		buf_release(&job->log);
		free(job->key);
		free(job->lock);
	}
	if (e->have_cache) {
		if (e->recorded)
			evalcache_prune(&e->cache, EVALCACHE_MAX_AGE_DAYS);
		evalcache_release(&e->cache);
	}
	free(e->jobs);
	free(e->queue);
	free(e);
}

/* ---- an inventory from Nix ---- */

/* One evaluation of eval_flake_json(): the outline, or one host. */
struct flake_job {
	const char *host; /* NULL: the outline */
	char *items;	  /* items.json */
	json_t *result;
	char *why;
	int ret;
	struct buf log;
};

struct flake_eval {
	struct flake_job *jobs;
	size_t njobs, next;
	size_t max_mb;
};

static void flake_job_run(struct flake_eval *fe, struct flake_job *j)
{
	struct nix_cost cost = {0};

	j->ret = nix_eval_json(inventory_nix, j->items, fe->max_mb, &j->log, &j->result, &j->why,
		&cost);
	if (j->ret == CONSTEL_ELIMIT) {
		j->why = xasprintf("its evaluator used %zu MB, more than the bound of %zu MB "
				   "(--eval-max-memory)",
			cost.peak_mb, fe->max_mb);
		j->ret = -1;
	} else if (j->ret == 0 && !json_object_get(j->result, "value")) {
		j->why = xstrdup("unexpected output of 'nix eval'");
		j->ret = -1;
	}
	if (j->ret == 0)
		buf_printf(&j->log, "# %s: evaluated in %.2fs, evaluator peak %zu MB\n",
			j->host ? j->host : "the inventory", cost.seconds, cost.peak_mb);
}

static bool flake_next(void *data, size_t *task)
{
	struct flake_eval *fe = data;

	if (fe->next >= fe->njobs)
		return false;
	*task = fe->next++;
	return true;
}

static void flake_run(void *data, size_t task)
{
	struct flake_eval *fe = data;

	flake_job_run(fe, &fe->jobs[task]);
}

static const struct pool_ops flake_pool = {.next = flake_next, .run = flake_run};

/* items.json of one evaluation: `item` with "host" set to `host` (NULL: none). */
static char *flake_items(json_t *item, const char *host)
{
	json_t *one = json_copy(item), *items = json_array();
	char *text;

	if (host)
		json_object_set_new(one, "host", json_string(host));
	json_array_append_new(items, one);
	text = json_dumps(items, JSON_COMPACT);
	json_decref(items);
	return text;
}

/* A failure of eval_flake_json(): the attribute (NULL: the whole) and why. */
static void add_failure(json_t *failures, const char *attr, const char *why)
{
	json_array_append_new(failures,
		json_pack("{s:o,s:s}", "attribute", attr ? json_string(attr) : json_null(), "message",
			why));
}

/*
 * Evaluates the outline, then every host of it at once, `jobs` at a time;
 * puts the whole value and its positions together in *root
 * ({"value","pos","locked"}). Failures go to `failures`.
 */
static int flake_evaluate(const struct eval_flake_opts *o, json_t *item, json_t **root,
	json_t *failures, struct buf *log)
{
	struct flake_eval fe = {0};
	struct flake_job outline = {0};
	json_t *names, *value, *hosts, *hosts_pos, *pos_c;
	size_t jobs = o->eval && o->eval->jobs ? o->eval->jobs : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
	int ret = -1;

	*root = NULL;
	fe.max_mb = max_memory_mb(o->eval);
	outline.items = flake_items(item, NULL);
	buf_init(&outline.log, NIX_OUTPUT_MAX);
	flake_job_run(&fe, &outline);
	buf_add(log, outline.log.data ? outline.log.data : "", outline.log.len);
	if (outline.ret < 0) {
		add_failure(failures, NULL, outline.why);
		goto out;
	}
	if (!json_is_true(json_object_get(outline.result, "split"))) {
		*root = json_incref(outline.result);
		ret = 0;
		goto out;
	}
	names = json_object_get(outline.result, "names");
	fe.njobs = json_array_size(names);
	fe.jobs = xcalloc(fe.njobs + 1, sizeof(*fe.jobs));
	for (size_t i = 0; i < fe.njobs; i++) {
		fe.jobs[i].host = json_string_value(json_array_get(names, i));
		fe.jobs[i].items = flake_items(item, fe.jobs[i].host);
		buf_init(&fe.jobs[i].log, NIX_OUTPUT_MAX);
	}
	if (fe.njobs)
		pool_run(&flake_pool, &fe, jobs < 1 ? 1 : jobs > fe.njobs ? fe.njobs : jobs);
	/* the whole value: the outline's, with each host's under `hosts` */
	value = json_object_get(outline.result, "value");
	hosts = json_object();
	hosts_pos = json_pack("{s:O,s:{}}", "p", json_object_get(outline.result, "hostPos"), "c");
	pos_c = json_object_get(hosts_pos, "c");
	ret = 0;
	for (size_t i = 0; i < fe.njobs; i++) {
		struct flake_job *j = &fe.jobs[i];

		buf_add(log, j->log.data ? j->log.data : "", j->log.len);
		if (j->ret < 0) {
			char *attr = xasprintf("%s.hosts.%s", o->attr, j->host);

			add_failure(failures, attr, j->why);
			free(attr);
			ret = -1;
			continue;
		}
		json_object_set(hosts, j->host, json_object_get(j->result, "value"));
		json_object_set(pos_c, j->host, json_object_get(j->result, "pos"));
	}
	json_object_set_new(value, "hosts", hosts);
	if (json_is_object(json_object_get(outline.result, "pos"))) {
		json_t *pos = json_object_get(outline.result, "pos");

		json_object_set(json_object_get(pos, "p"), "hosts",
			json_object_get(outline.result, "hostsPos"));
		json_object_set_new(json_object_get(pos, "c"), "hosts", hosts_pos);
	} else {
		json_decref(hosts_pos);
	}
	if (ret == 0)
		*root = json_pack("{s:O,s:O,s:O}", "value", value, "pos",
			json_object_get(outline.result, "pos"), "locked",
			json_object_get(outline.result, "locked"));
out:
	for (size_t i = 0; i < fe.njobs; i++) {
		free(fe.jobs[i].items);
		free(fe.jobs[i].why);
		json_decref(fe.jobs[i].result);
		buf_release(&fe.jobs[i].log);
	}
	free(fe.jobs);
	free(outline.items);
	free(outline.why);
	json_decref(outline.result);
	buf_release(&outline.log);
	return ret;
}

int eval_flake_json(const struct eval_flake_opts *o, json_t **value, json_t **pos, bool *cached,
	json_t **failures, struct buf *log)
{
	struct evalcache cache = {0};
	json_t *attr = eval__attr_path(o->attr), *item = NULL, *root = NULL, *hit = NULL;
	char *ref = NULL, *sub = NULL, *key = NULL, *version = NULL;
	bool cacheable = false;
	int ret = -1;

	*value = *pos = NULL;
	*cached = false;
	*failures = json_array();
	if (!attr) {
		add_failure(*failures, NULL, "the attribute path is not valid UTF-8 text");
		goto out;
	}
	/*
	 * A folder of a repository is read as Nix's command line reads it, from
	 * git (a bare path would be only the folder: a flake could not import
	 * `../lib`); one of a clean working tree as its commit, and cached.
	 */
	if (o->repo && o->ref[0] == '/' &&
		(!o->commit || provenance_flake_at(o->repo, o->ref, o->commit, &sub) == 0) &&
		provenance_flake_ref(o->repo, o->ref, ".", o->commit, &ref) == 0)
		cacheable = o->commit && !o->no_cache;
	if (!ref)
		ref = xstrdup(o->ref);
	if (cacheable && evalcache_open(&cache, o->cache_dir) == 0 && (version = nix_version())) {
		key = evalcache_key(o->commit, ref, attr, "inventory", version);
		if (evalcache_get_value(&cache, key, &hit) == 0 && json_is_object(hit) &&
			json_object_get(hit, "value")) {
			buf_printf(log, "# %s#%s: from the evaluation cache\n", ref, o->attr);
			*value = json_incref(json_object_get(hit, "value"));
			*pos = json_incref(json_object_get(hit, "pos"));
			*cached = true;
			ret = 0;
			goto out;
		}
	}
	item = json_object();
	json_object_set_new(item, "flake", json_string(ref));
	json_object_set(item, "attrPath", attr);
	if (o->root)
		json_object_set_new(item, "root", json_string(o->root));
	if (key)
		json_object_set_new(item, "lock",
			*sub ? json_sprintf("%s/flake.lock", sub) : json_string("flake.lock"));
	if (flake_evaluate(o, item, &root, *failures, log) < 0)
		goto out;
	*value = json_incref(json_object_get(root, "value"));
	*pos = json_incref(json_object_get(root, "pos"));
	buf_printf(log, "# %s#%s: evaluated\n", ref, o->attr);
	ret = 0;
	if (key && json_is_true(json_object_get(root, "locked"))) {
		json_object_del(root, "locked");
		if (evalcache_put_value(&cache, key, root) < 0)
			buf_printf(log, "# not cached: %s\n", error_last());
	} else if (key) {
		buf_printf(log, "# not cached: the flake does not lock every input\n");
	}
out:
	if (cache.dir)
		evalcache_release(&cache);
	json_decref(attr);
	json_decref(item);
	json_decref(root);
	json_decref(hit);
	free(ref);
	free(sub);
	free(key);
	free(version);
	return ret;
}
