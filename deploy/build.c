#include "deploy/build.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc.h"

/* What Nix prints while building is kept for the log, up to this much. */
#define NIX_OUTPUT_MAX (4u << 20)

/* A path-like flake reference is made absolute against the inventory's folder. */
static char *resolve_ref(const struct inventory *inv, const char *ref)
{
	char *joined, *real;

	if (strchr(ref, ':'))
		return xstrdup(ref);
	joined = ref[0] == '/' ? xstrdup(ref) : xasprintf("%s/%s", inv->dir, ref);
	real = realpath(joined, NULL);
	if (real) {
		free(joined);
		return real;
	}
	return joined;
}

static int local_platforms(struct build_set *set)
{
	const char *argv[] = {PROC_NIX, "show-config", "--json", NULL};
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(65536);
	json_t *root = NULL, *v;
	json_error_t jerr;
	size_t i;
	int ret = -1;

	if (proc_run(argv, &out, &err) < 0) {
		char *cause = buf_tail_one_line(&err, 1);

		ret = error_set("cannot read nix's configuration: %s (%s)", cause, error_last());
		free(cause);
		goto out;
	}
	root = json_loadb(out.data, out.len, JSON_DECODE_INT_AS_REAL, &jerr);
	if (!root) {
		ret = error_set("cannot parse 'nix show-config --json': %s", jerr.text);
		goto out;
	}
	v = json_object_get(json_object_get(root, "system"), "value");
	set->system = xstrdup(json_is_string(v) ? json_string_value(v) : "x86_64-linux");
	strvec_push(&set->platforms, set->system);
	v = json_object_get(json_object_get(root, "extra-platforms"), "value");
	for (i = 0; i < json_array_size(v); i++) {
		json_t *p = json_array_get(v, i);

		if (json_is_string(p) && !strvec_contains(&set->platforms, json_string_value(p)))
			strvec_push(&set->platforms, json_string_value(p));
	}
	ret = 0;
out:
	json_decref(root);
	buf_release(&out);
	buf_release(&err);
	return ret;
}

int build_plan(struct build_set *set, const struct inventory *inv, const bool *selected,
	const char *build_on, const char *flake_override)
{
	memset(set, 0, sizeof(*set));
	strvec_init(&set->platforms);
	if (local_platforms(set) < 0)
		return -1;
	set->items = xcalloc(inv->nhosts + 1, sizeof(*set->items));
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];
		struct build_item *it;

		if (!selected[i])
			continue;
		it = &set->items[set->nitems++];
		it->host = i;
		it->attr = xstrdup(h->attr);
		if (h->file) {
			it->file = resolve_ref(inv, h->file);
			it->installable = xstrdup(h->attr);
		} else {
			it->ref = resolve_ref(inv, flake_override ? flake_override : h->flake);
			it->installable = xasprintf("%s#%s", it->ref, h->attr);
		}
		if (build_on && !strcmp(build_on, "target"))
			it->where = BUILD_TARGET;
		else if (build_on && !strcmp(build_on, "local"))
			it->where = BUILD_LOCAL;
		else if (h->build == INV_BUILD_TARGET)
			it->where = BUILD_TARGET;
		else if (h->build == INV_BUILD_BUILDER)
			it->where = BUILD_BUILDER;
		else
			it->where = BUILD_LOCAL;
		if (it->where == BUILD_BUILDER)
			it->builder = xstrdup(h->builder);
		if (it->where == BUILD_TARGET && h->local)
			it->where = BUILD_LOCAL;
		if (it->where == BUILD_LOCAL && !strvec_contains(&set->platforms, h->arch))
			return error_set("host '%s' is %s, which this machine (%s) cannot build; "
					 "add it to nix's extra-platforms (binfmt emulation), set "
					 "'builders: { %s: HOST }' or 'build: target'",
				h->name, h->arch, set->system, h->arch);
	}
	return 0;
}

static const char *where_name(const struct build_item *it)
{
	switch (it->where) {
	case BUILD_LOCAL:
		return "locally";
	case BUILD_BUILDER:
		return "on builder";
	case BUILD_TARGET:
		return "on the target itself";
	}
	return "?";
}

void build_describe(const struct build_set *set, const struct inventory *inv, struct buf *out)
{
	for (size_t i = 0; i < set->nitems; i++) {
		const struct build_item *it = &set->items[i];
		const struct inv_host *h = &inv->hosts[it->host];
		bool emulated = it->where == BUILD_LOCAL && strcmp(h->arch, set->system);

		buf_printf(out, "%s: %s built %s%s%s%s\n", h->name, h->arch, where_name(it),
			it->builder ? " " : "", it->builder ? it->builder : "",
			emulated ? " (emulated through extra-platforms)" : "");
	}
}

/*
 * The evaluation, as fixed text: it reads the items from items.json next to
 * itself, so that every flake reference, file and attribute name reaches
 * Nix as data (a string of JSON), never as Nix code to parse. One [ drvPath
 * outPath ] per item, in order.
 */
static const char eval_nix[] =
	"# written by constel: the systems of the hosts in ./items.json, in order\n"
	"let\n"
	"  items = builtins.fromJSON (builtins.readFile ./items.json);\n"
	"  top = item:\n"
	"    if item ? file then\n"
	"      (let x = import item.file; in if builtins.isFunction x then x { } else x)\n"
	"    else\n"
	"      builtins.getFlake item.flake;\n"
	"  system = item: builtins.foldl' (v: name: builtins.getAttr name v) (top item)\n"
	"    item.attrPath;\n"
	"in\n"
	"map (item: let s = system item; in [ s.drvPath s.outPath ]) items\n";

/*
 * The segments of an attribute path, as the inventory writes it: separated
 * by '.', each a name or a double-quoted string (nixosConfigurations."a.b"
 * is two segments, the second "a.b"). The inventory refuses anything else;
 * whatever reaches here is still only ever a name to look up.
 */
static json_t *attr_path(const char *attr)
{
	json_t *path = json_array();
	const char *p = attr;

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

/* One item of items.json: { "flake": REF } or { "file": PATH }, and "attrPath". */
static json_t *item_json(const struct build_item *it)
{
	json_t *o, *path = attr_path(it->attr);
	json_t *src = json_string(it->file ? it->file : it->ref);

	if (!src || !path) {
		json_decref(src);
		json_decref(path);
		return NULL;
	}
	o = json_object();
	json_object_set_new(o, it->file ? "file" : "flake", src);
	json_object_set_new(o, "attrPath", path);
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
	char *msg;

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
	msg = buf_detach(&b);
	return msg;
}

/*
 * One `nix eval` of the items given; on success their derivations and
 * output paths are filled in. Else -1 with the reason in error_last(): what
 * Nix said, or why it could not be asked.
 */
static int eval_batch(struct build_item **items, size_t n, struct buf *log)
{
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(NIX_OUTPUT_MAX);
	const char *argv[] = {PROC_NIX, "eval", "--impure", "--json", "--file", NULL, NULL};
	char *dir = NULL, *expr_file = NULL, *items_file = NULL, *text = NULL, *line;
	json_t *list = json_array(), *root = NULL;
	json_error_t jerr;
	int ret;

	for (size_t i = 0; i < n; i++) {
		json_t *o = item_json(items[i]);

		if (!o) {
			ret = error_set("'%s' is not an attribute path of valid UTF-8 text",
				items[i]->installable);
			goto out;
		}
		json_array_append_new(list, o);
	}
	text = json_dumps(list, JSON_COMPACT);
	dir = eval_dir();
	if (!dir) {
		ret = -1;
		goto out;
	}
	expr_file = xasprintf("%s/eval.nix", dir);
	items_file = xasprintf("%s/items.json", dir);
	if ((ret = write_private(items_file, text, strlen(text))) < 0 ||
		(ret = write_private(expr_file, eval_nix, strlen(eval_nix))) < 0)
		goto out;
	argv[7] = expr_file;
	line = proc_describe(argv);
	buf_printf(log, "$ %s\n# %s: %s\n", line, items_file, text);
	free(line);
	ret = proc_run(argv, &out, &err);
	buf_add(log, err.data ? err.data : "", err.len);
	if (ret < 0) {
		char *why = err.len ? eval_error(&err, expr_file) : xstrdup(error_last());

		ret = error_set("%s", why);
		free(why);
		goto out;
	}
	root = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
	if (!json_is_array(root) || json_array_size(root) != n) {
		ret = error_set("unexpected output of 'nix eval'");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *pair = json_array_get(root, i);
		const char *drv = json_string_value(json_array_get(pair, 0));
		const char *path = json_string_value(json_array_get(pair, 1));

		if (!drv || !path) {
			ret = error_set(
				"'nix eval' gave no store path for '%s'", items[i]->installable);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *pair = json_array_get(root, i);

		free(items[i]->drv_path);
		free(items[i]->out_path);
		items[i]->drv_path = xstrdup(json_string_value(json_array_get(pair, 0)));
		items[i]->out_path = xstrdup(json_string_value(json_array_get(pair, 1)));
	}
	ret = 0;
out:
	eval_dir_remove(dir);
	free(expr_file);
	free(items_file);
	free(text);
	json_decref(list);
	json_decref(root);
	buf_release(&out);
	buf_release(&err);
	return ret;
}

/*
 * One evaluation of every item given: their derivations and output paths,
 * in order. Nix evaluates a flake once however many hosts it holds. On an
 * evaluation error, the items are evaluated one by one so that a host that
 * does not evaluate fails alone.
 */
static int eval_items(struct build_item **items, size_t n, struct buf *log)
{
	int ret = eval_batch(items, n, log);

	if (ret < 0 && n > 1) {
		ret = 0;
		for (size_t i = 0; i < n; i++)
			if (eval_items(&items[i], 1, log) < 0)
				ret = -1;
	} else if (ret < 0) {
		/* Nix's words reach the terminal: made safe there */
		char *why = text_sanitize(error_last());

		free(items[0]->error);
		items[0]->error = xasprintf("evaluation failed: %s", why);
		free(why);
	}
	return ret;
}

/*
 * Nix's report of one failed derivation in the stderr of a `--keep-going`
 * realise: the block that starts "error: builder for 'DRV' failed", up to the
 * next "error:" line (its "> " lines are the builder's own last lines).
 * NULL when the text has no such block. Caller frees.
 */
static char *builder_block(const char *text, const char *drv)
{
	char *needle = xasprintf("error: builder for '%s' failed", drv);
	const char *start = strstr(text, needle), *end;

	free(needle);
	if (!start)
		return NULL;
	end = strstr(start + 1, "\nerror: ");
	return xstrndup(start, end ? (size_t)(end - start) : strlen(start));
}

/*
 * A builder block as one line: "builder for 'DRV' failed with exit code 1:
 * LINE; LINE; LINE", the last lines the builder printed (Nix quotes them
 * as "> ..."). Caller frees.
 */
static char *builder_summary(const char *block)
{
	struct buf b = BUF_INIT(0), said = BUF_INIT(0);
	const char *nl = strchr(block, '\n'), *p;
	size_t head = nl ? (size_t)(nl - block) : strlen(block);
	char *out;

	if (!strncmp(block, "error: ", 7)) {
		block += 7;
		head -= 7;
	}
	while (head && (block[head - 1] == ';' || block[head - 1] == ' '))
		head--;
	buf_add(&b, block, head);
	for (p = nl; p && *p; p = strchr(p + 1, '\n')) {
		const char *l = p + 1 + strspn(p + 1, " ");
		const char *e = strchrnul(l, '\n');

		if (l[0] == '>' && (l[1] == ' ' || l[1] == '\n' || !l[1])) {
			buf_add(&said, l + (l[1] == ' ' ? 2 : 1),
				(size_t)(e - l - (l[1] == ' ' ? 2 : 1)));
			buf_adds(&said, "\n");
		}
	}
	if (said.len) {
		char *tail = buf_tail_one_line(&said, 3);

		buf_printf(&b, ": %s", tail);
		free(tail);
	}
	out = buf_detach(&b);
	buf_release(&said);
	return out;
}

/* The store paths of the drv closure of `drv` (NULL-terminated strvec). */
static void drv_closure(const char *drv, struct strvec *paths)
{
	const char *argv[] = {"nix-store", "--query", "--requisites", drv, NULL};
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX);

	if (proc_run(argv, &out, NULL) == 0 && out.data) {
		char *p = out.data, *nl;

		while ((nl = strchr(p, '\n'))) {
			*nl = '\0';
			strvec_push(paths, p);
			p = nl + 1;
		}
	}
	buf_release(&out);
}

/*
 * Why this item failed, in words of its own: its builder's block of Nix's
 * output, else the block of the first failed derivation of its own closure
 * (a dependency), never a line that belongs to another host's derivation.
 */
static char *item_failure(const struct build_item *it, const struct buf *err)
{
	const char *text = err->data ? err->data : "";
	struct strvec closure = STRVEC_INIT;
	char *block = builder_block(text, it->drv_path), *msg;

	if (!block) {
		drv_closure(it->drv_path, &closure);
		for (size_t i = 0; i < closure.nr && !block; i++)
			block = builder_block(text, closure.v[i]);
		strvec_release(&closure);
	}
	if (block) {
		msg = builder_summary(block);
		free(block);
		return msg;
	}
	return xasprintf("%s was not built (see the build log)", it->drv_path);
}

/*
 * Realises the derivations of a group with one `nix-store --realise
 * --keep-going`, so Nix builds them in parallel and a failing one does not
 * stop the others; then asks which outputs exist to tell who failed.
 */
static void realise_group(
	const struct inventory *inv, struct build_item **items, size_t n, struct buf *log)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(NIX_OUTPUT_MAX);
	double start = now_seconds();
	char *line;
	int ret;

	strvec_push(&argv, "nix-store");
	strvec_push(&argv, "--realise");
	strvec_push(&argv, "--keep-going");
	/* builders' output only in Nix's failure reports: "> " lines per derivation */
	strvec_push(&argv, "--no-build-output");
	if (items[0]->where == BUILD_BUILDER) {
		strvec_push(&argv, "--max-jobs");
		strvec_push(&argv, "0");
		strvec_push(&argv, "--option");
		strvec_push(&argv, "builders");
		strvec_pushf(
			&argv, "ssh://%s %s", items[0]->builder, inv->hosts[items[0]->host].arch);
	}
	for (size_t i = 0; i < n; i++)
		strvec_push(&argv, items[i]->drv_path);
	line = proc_describe((const char *const *)argv.v);
	buf_printf(log, "$ %s\n", line);
	free(line);
	ret = proc_run((const char *const *)argv.v, &out, &err);
	buf_add(log, err.data ? err.data : "", err.len);
	strvec_release(&argv);
	for (size_t i = 0; i < n; i++) {
		items[i]->seconds = now_seconds() - start;
		if (ret == 0)
			continue;
		/* which outputs were built despite the failure? */
		strvec_push(&argv, "nix-store");
		strvec_push(&argv, "--check-validity");
		strvec_push(&argv, items[i]->out_path);
		if (proc_run((const char *const *)argv.v, NULL, NULL) < 0) {
			char *said = item_failure(items[i], &err), *why = text_sanitize(said);

			free(items[i]->error);
			items[i]->error = xasprintf("build failed: %s", why);
			free(said);
			free(why);
		}
		strvec_release(&argv);
	}
	buf_release(&out);
	buf_release(&err);
}

static bool same_group(
	const struct build_item *a, const struct build_item *b, const struct inventory *inv)
{
	if (a->where != b->where)
		return false;
	if (strcmp(inv->hosts[a->host].arch, inv->hosts[b->host].arch))
		return false;
	if ((a->builder == NULL) != (b->builder == NULL) ||
		(a->builder && strcmp(a->builder, b->builder)))
		return false;
	return true;
}

size_t build_eval(struct build_set *set, struct buf *log)
{
	struct build_item **all = xcalloc(set->nitems + 1, sizeof(*all));
	size_t failed = 0;

	for (size_t i = 0; i < set->nitems; i++)
		all[i] = &set->items[i];
	if (set->nitems)
		eval_items(all, set->nitems, log);
	for (size_t i = 0; i < set->nitems; i++)
		failed += set->items[i].error != NULL;
	free(all);
	return failed;
}

size_t build_run(struct build_set *set, const struct inventory *inv, struct buf *log)
{
	struct build_item **group = xcalloc(set->nitems + 1, sizeof(*group));
	bool *done = xcalloc(set->nitems + 1, sizeof(*done));
	size_t failed = 0;

	build_eval(set, log);
	for (size_t i = 0; i < set->nitems; i++) {
		size_t n = 0;

		if (done[i] || set->items[i].where == BUILD_TARGET || set->items[i].error)
			continue;
		for (size_t j = i; j < set->nitems; j++) {
			if (!done[j] && !set->items[j].error &&
				same_group(&set->items[i], &set->items[j], inv)) {
				group[n++] = &set->items[j];
				done[j] = true;
			}
		}
		realise_group(inv, group, n, log);
	}
	for (size_t i = 0; i < set->nitems; i++)
		if (set->items[i].error)
			failed++;
	free(group);
	free(done);
	return failed;
}

int build_eval_drv(struct build_item *item, struct buf *log)
{
	if (item->drv_path)
		return 0;
	if (eval_items(&item, 1, log) < 0)
		return error_set("%s", item->error ? item->error : "evaluation failed");
	return 0;
}

struct build_item *build_set_item(struct build_set *set, size_t host)
{
	for (size_t i = 0; i < set->nitems; i++)
		if (set->items[i].host == host)
			return &set->items[i];
	return NULL;
}

void build_set_release(struct build_set *set)
{
	for (size_t i = 0; i < set->nitems; i++) {
		struct build_item *it = &set->items[i];

		free(it->builder);
		free(it->installable);
		free(it->ref);
		free(it->attr);
		free(it->file);
		free(it->out_path);
		free(it->drv_path);
		free(it->error);
	}
	free(set->items);
	free(set->system);
	strvec_release(&set->platforms);
	memset(set, 0, sizeof(*set));
}
