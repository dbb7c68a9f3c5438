#include "deploy/build.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	const char *argv[] = { "nix", "show-config", "--json", NULL };
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(65536);
	json_t *root = NULL, *v;
	json_error_t jerr;
	size_t i;
	int ret = -1;

	if (proc_run(argv, &out, &err) < 0) {
		ret = error_set("cannot read nix's configuration: %s: %s", error_last(),
			buf_tail_lines(&err, 1));
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
		if (h->file) {
			it->file = resolve_ref(inv, h->file);
			it->installable = xstrdup(h->attr);
		} else {
			char *ref = resolve_ref(inv, flake_override ? flake_override : h->flake);

			it->installable = xasprintf("%s#%s", ref, h->attr);
			free(ref);
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

/* The last lines of nix's stderr as one line, for an error message. */
static char *one_line(const struct buf *err, int lines)
{
	char *s = xstrdup(buf_tail_lines(err, lines)), *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '\n' || *r == '\r' || *r == '\t') {
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		} else {
			*w++ = *r;
		}
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
	return s;
}

/* nix build --json: [{"drvPath": ..., "outputs": {"out": ...}}, ...] in argument order. */
static int read_build_json(const char *text, size_t len, struct build_item **items, size_t n)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	int ret = -1;

	if (!json_is_array(root) || json_array_size(root) != n) {
		ret = error_set("unexpected output of 'nix build --json'%s%s", root ? "" : ": ",
			root ? "" : jerr.text);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(root, i);
		json_t *drv = json_object_get(o, "drvPath");
		json_t *path = json_object_get(json_object_get(o, "outputs"), "out");

		if (!json_is_string(path)) {
			ret = error_set("'nix build --json' gave no output path for '%s'",
				items[i]->installable);
			goto out;
		}
		free(items[i]->out_path);
		items[i]->out_path = xstrdup(json_string_value(path));
		if (json_is_string(drv)) {
			free(items[i]->drv_path);
			items[i]->drv_path = xstrdup(json_string_value(drv));
		}
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

/* One `nix build` of the items given; fills them, or returns -1. */
static int nix_build(const struct inventory *inv, struct build_item **items, size_t n,
	struct buf *log)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(NIX_OUTPUT_MAX);
	double start = now_seconds();
	char *line;
	int ret;

	strvec_push(&argv, "nix");
	strvec_push(&argv, "build");
	strvec_push(&argv, "--json");
	strvec_push(&argv, "--no-link");
	strvec_push(&argv, "--print-build-logs");
	if (items[0]->where == BUILD_BUILDER) {
		const struct inv_host *h = &inv->hosts[items[0]->host];

		strvec_push(&argv, "--max-jobs");
		strvec_push(&argv, "0");
		strvec_push(&argv, "--builders");
		strvec_pushf(&argv, "ssh://%s %s", items[0]->builder, h->arch);
	}
	if (items[0]->file) {
		strvec_push(&argv, "-f");
		strvec_push(&argv, items[0]->file);
	}
	for (size_t i = 0; i < n; i++)
		strvec_push(&argv, items[i]->installable);
	line = proc_describe((const char *const *)argv.v);
	buf_printf(log, "$ %s\n", line);
	free(line);
	ret = proc_run((const char *const *)argv.v, &out, &err);
	buf_add(log, err.data ? err.data : "", err.len);
	if (ret == 0)
		ret = read_build_json(out.data ? out.data : "", out.len, items, n);
	if (ret < 0) {
		char *tail = one_line(&err, 3);
		char *why = xasprintf("%s: %s", error_last(), tail);

		free(tail);
		for (size_t i = 0; i < n; i++) {
			free(items[i]->error);
			items[i]->error = xstrdup(why);
		}
		free(why);
	}
	for (size_t i = 0; i < n; i++)
		items[i]->seconds = now_seconds() - start;
	strvec_release(&argv);
	buf_release(&out);
	buf_release(&err);
	return ret;
}

static bool same_group(const struct build_item *a, const struct build_item *b,
	const struct inventory *inv)
{
	if (a->where != b->where)
		return false;
	if (strcmp(inv->hosts[a->host].arch, inv->hosts[b->host].arch))
		return false;
	if ((a->builder == NULL) != (b->builder == NULL) ||
		(a->builder && strcmp(a->builder, b->builder)))
		return false;
	if ((a->file == NULL) != (b->file == NULL) || (a->file && strcmp(a->file, b->file)))
		return false;
	return true;
}

size_t build_run(struct build_set *set, const struct inventory *inv, struct buf *log)
{
	struct build_item **group = xcalloc(set->nitems + 1, sizeof(*group));
	bool *done = xcalloc(set->nitems + 1, sizeof(*done));
	size_t failed = 0;

	for (size_t i = 0; i < set->nitems; i++) {
		size_t n = 0;

		if (done[i] || set->items[i].where == BUILD_TARGET)
			continue;
		for (size_t j = i; j < set->nitems; j++) {
			if (!done[j] && same_group(&set->items[i], &set->items[j], inv)) {
				group[n++] = &set->items[j];
				done[j] = true;
			}
		}
		if (nix_build(inv, group, n, log) == 0 || n == 1)
			continue;
		/* one bad host fails the group: find it by building each alone */
		for (size_t j = 0; j < n; j++) {
			free(group[j]->error);
			group[j]->error = NULL;
			nix_build(inv, &group[j], 1, log);
		}
	}
	for (size_t i = 0; i < set->nitems; i++)
		if (set->items[i].error)
			failed++;
	free(group);
	free(done);
	return failed;
}

static int nix_eval_attr(const struct build_item *item, const char *suffix, char **out,
	struct buf *log)
{
	struct strvec argv = STRVEC_INIT;
	struct buf sout = BUF_INIT(65536), err = BUF_INIT(NIX_OUTPUT_MAX);
	int ret;

	strvec_push(&argv, "nix");
	strvec_push(&argv, "eval");
	strvec_push(&argv, "--raw");
	if (item->file) {
		strvec_push(&argv, "-f");
		strvec_push(&argv, item->file);
	}
	strvec_pushf(&argv, "%s.%s", item->installable, suffix);
	ret = proc_run((const char *const *)argv.v, &sout, &err);
	if (log)
		buf_add(log, err.data ? err.data : "", err.len);
	if (ret == 0 && (!sout.len || strncmp(sout.data, "/nix/store/", 11)))
		ret = error_set("'nix eval' gave no store path for '%s'", item->installable);
	else if (ret < 0) {
		char *tail = one_line(&err, 3);

		ret = error_set("%s: %s", error_last(), tail);
		free(tail);
	}
	if (ret == 0)
		*out = buf_detach(&sout);
	strvec_release(&argv);
	buf_release(&sout);
	buf_release(&err);
	return ret;
}

int build_eval_drv(struct build_item *item, struct buf *log)
{
	char *drv = NULL;

	if (nix_eval_attr(item, "drvPath", &drv, log) < 0)
		return -1;
	free(item->drv_path);
	item->drv_path = drv;
	return 0;
}

int build_eval_out(const struct build_item *item, char **out_path)
{
	return nix_eval_attr(item, "outPath", out_path, NULL);
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
