#include "deploy/build.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"
#include "deploy/eval.h"

/* What Nix prints while building is kept for the log, up to this much. */

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

int build_sign(const struct inventory *inv, const char *const *paths, size_t n)
{
	const char *key = inv->defaults.signing_key;
	struct strvec argv = STRVEC_INIT;
	struct buf err = BUF_INIT(65536);
	char *file;
	int ret;

	if (!key || !n)
		return 0;
	file = key[0] == '/' ? xstrdup(key) : xasprintf("%s/%s", inv->dir, key);
	proc_push_nix(&argv);
	strvec_push(&argv, "store");
	strvec_push(&argv, "sign");
	strvec_push(&argv, "--key-file");
	strvec_push(&argv, file);
	strvec_push(&argv, "--recursive");
	/* derivations (build: target) are all one call's, or none are */
	if (strlen(paths[0]) > 4 && !strcmp(paths[0] + strlen(paths[0]) - 4, ".drv"))
		strvec_push(&argv, "--derivation");
	for (size_t i = 0; i < n; i++)
		strvec_push(&argv, paths[i]);
	ret = proc_run((const char *const *)argv.v, NULL, &err);
	if (ret < 0)
		ret = error_set("cannot sign with %s: %s", file,
			err.len ? buf_tail_lines(&err, 1) : error_last());
	strvec_release(&argv);
	buf_release(&err);
	free(file);
	return ret;
}

/* The builder `builders:` declares for `arch`, or NULL. */
static const char *declared_builder(const struct inventory *inv, const char *arch)
{
	for (size_t i = 0; i < inv->nbuilders; i++)
		if (!strcmp(inv->builders[i].arch, arch) && strcmp(inv->builders[i].spec, "local") &&
			strcmp(inv->builders[i].spec, "target"))
			return inv->builders[i].spec;
	return NULL;
}

int build_plan(struct build_set *set, const struct inventory *inv, const bool *selected,
	const char *build_on, const char *flake_override, unsigned flags)
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
		/* emulation is hours where a native builder takes minutes: never by surprise */
		if (it->where == BUILD_LOCAL && strcmp(h->arch, set->system) &&
			declared_builder(inv, h->arch) && !(flags & BUILD_ALLOW_EMULATION))
			return error_set("host '%s' (%s) would be built here under emulation, while "
					 "builders: names '%s' for %s; build it there (no "
					 "'build: local' or '--build-on local'), or pass "
					 "--allow-emulation",
				h->name, h->arch, declared_builder(inv, h->arch), h->arch);
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
 * The `builders` line for Nix and the NIX_SSHOPTS its ssh takes (caller
 * frees both): a builder that is a host of the inventory is reached as
 * constel reaches it, through the same ssh config (its Host entry: address,
 * user, port, key, known hosts), or its inventory address, user and port;
 * a `user@address[:port]` builder as written (the port through -p, which
 * Nix's ssh:// URLs cannot carry).
 */
static void builder_line(const struct build_set *set, const struct inventory *inv,
	const struct build_item *it, char **line, char **sshopts)
{
	const char *arch = inv->hosts[it->host].arch, *spec = it->builder;
	long h = inventory_host_index(inv, spec);
	struct buf opts = BUF_INIT(0);
	char *where;

	if (set->ssh_config)
		buf_printf(&opts, "-F %s ", set->ssh_config);
	if (h >= 0 && set->ssh_config) {
		where = xstrdup(spec); /* its Host entry says the rest */
	} else if (h >= 0) {
		const struct inv_host *b = &inv->hosts[h];

		where = b->user ? xasprintf("%s@%s", b->user, b->address) : xstrdup(b->address);
		if (b->port)
			buf_printf(&opts, "-p %d ", b->port);
	} else {
		const char *at = strchr(spec, '@'), *colon = strrchr(spec, ':');
		const char *close = strchr(spec, ']');

		/* user@host:port, user@[v6]:port; a bare v6 address has colons of its own */
		if (at && colon && colon > at && (!close || colon > close) &&
			(close || strchr(at, ':') == colon)) {
			where = xstrndup(spec, (size_t)(colon - spec));
			buf_printf(&opts, "-p %s ", colon + 1);
		} else {
			where = xstrdup(spec);
		}
		if (close) {
			/* ssh takes user@v6, not user@[v6] */
			char *o = where, *w = where;

			for (; *o; o++)
				if (*o != '[' && *o != ']')
					*w++ = *o;
			*w = '\0';
		}
	}
	*line = xasprintf("ssh://%s %s", where, arch);
	*sshopts = opts.len ? xstrndup(opts.data, opts.len - 1) : NULL;
	free(where);
	buf_release(&opts);
}

void build_realise(const struct build_set *set, const struct inventory *inv,
	struct build_item **items, size_t n, struct buf *log)
{
	struct strvec argv = STRVEC_INIT;
	struct buf out = BUF_INIT(NIX_OUTPUT_MAX), err = BUF_INIT(NIX_OUTPUT_MAX);
	double start = now_seconds();
	char *line, *builders = NULL, *sshopts = NULL, *env_opts = NULL;
	int ret;

	strvec_push(&argv, "nix-store");
	strvec_push(&argv, "--realise");
	strvec_push(&argv, "--keep-going");
	/* builders' output only in Nix's failure reports: "> " lines per derivation */
	strvec_push(&argv, "--no-build-output");
	if (items[0]->where == BUILD_BUILDER) {
		builder_line(set, inv, items[0], &builders, &sshopts);
		strvec_push(&argv, "--max-jobs");
		strvec_push(&argv, "0");
		strvec_push(&argv, "--option");
		strvec_push(&argv, "builders");
		strvec_push(&argv, builders);
		if (sshopts)
			env_opts = xasprintf("NIX_SSHOPTS=%s", sshopts);
	}
	for (size_t i = 0; i < n; i++)
		strvec_push(&argv, items[i]->drv_path);
	line = proc_describe((const char *const *)argv.v);
	buf_printf(log, "$ %s%s%s\n", env_opts ? env_opts : "", env_opts ? " " : "", line);
	free(line);
	{
		const char *env[] = {env_opts, NULL};
		struct proc_cmd cmd = {.argv = (const char *const *)argv.v,
			.env = env_opts ? env : NULL,
			.out = &out,
			.err = &err};

		ret = proc_cmd_run(&cmd);
	}
	free(builders);
	free(sshopts);
	free(env_opts);
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

bool build_same_group(
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
	struct eval *e;
	size_t failed = 0;

	eval_start(&e, set);
	eval_finish(e, log);
	for (size_t i = 0; i < set->nitems; i++)
		failed += set->items[i].error != NULL;
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
				build_same_group(&set->items[i], &set->items[j], inv)) {
				group[n++] = &set->items[j];
				done[j] = true;
			}
		}
		build_realise(set, inv, group, n, log);
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
	if (eval_item(NULL, item, log) < 0)
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
