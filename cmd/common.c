/*
 * The command table and what the commands share: help, usage and the
 * exit-2 document, loading, graph, selection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "deploy/eval.h"
#include "deploy/provenance.h"

const struct cmd *const cmd_table[] = {
	&cmd_plan_entry,
	&cmd_build_entry,
	&cmd_deploy_entry,
	&cmd_rollback_entry,
	&cmd_reboot_entry,
	&cmd_status_entry,
	&cmd_log_entry,
	&cmd_exec_entry,
	&cmd_registry_entry,
	&cmd_sudoers_entry,
	&cmd_help_entry,
	&cmd_completion_entry,
	&cmd_complete_hosts_entry,
	NULL,
};

const struct opt cmd_global_opts[] = {
	{.name = "inventory",
		.short_name = 'i',
		.kind = OPT_STRING,
		.arg = "FILE",
		.id = CMD_OPT_INVENTORY,
		.help = "the inventory, a file or FLAKE#ATTR (default ./constellation.yaml, else "
			".#constellation when ./flake.nix exists)"},
	{.name = "ssh-config",
		.kind = OPT_STRING,
		.arg = "FILE",
		.id = CMD_OPT_SSH_CONFIG,
		.help = "OpenSSH client configuration (default ~/.ssh/config)"},
	{.name = "json",
		.kind = OPT_FLAG,
		.id = CMD_OPT_JSON,
		.help = "one JSON document on stdout; human text on stderr"},
	{.name = "verbose",
		.short_name = 'v',
		.kind = OPT_FLAG,
		.id = CMD_OPT_VERBOSE,
		.help = "more detail (repeatable)"},
	{.name = "help",
		.short_name = 'h',
		.kind = OPT_FLAG,
		.id = CMD_OPT_HELP,
		.help = "this help; `constel COMMAND --help` for a command"},
	{.name = "version", .kind = OPT_FLAG, .id = CMD_OPT_VERSION, .help = "the version"},
	{NULL},
};

const struct cmd *cmd_find(const char *name)
{
	for (size_t i = 0; cmd_table[i]; i++)
		if (!strcmp(cmd_table[i]->name, name))
			return cmd_table[i];
	return NULL;
}

/* ---- help and usage ---- */

#define USAGE_WIDTH 80

/* "usage: constel NAME [--a] [--b X]\n       [HOST...]" (no final newline). */
static void add_usage(struct buf *b, const struct cmd *c)
{
	const char *nl;
	size_t col;

	buf_printf(b, "usage: constel %s ", c->name);
	opts_add_synopsis(b, c->opts, (int)b->len, 7, USAGE_WIDTH);
	if (!c->args || !*c->args)
		return;
	nl = strrchr(b->data, '\n');
	col = nl ? b->len - (size_t)(nl + 1 - b->data) : b->len;
	if (c->opts[0].name && col + 1 + strlen(c->args) >= USAGE_WIDTH)
		buf_printf(b, "\n%7s%s", "", c->args);
	else
		buf_printf(b, "%s%s", c->opts[0].name ? " " : "", c->args);
}

static const char exit_status_text[] =
	"exit status: 0 every selected host done, 1 a host failed, was rolled back or skipped,\n"
	"2 bad usage or invalid inventory (nothing built, no host contacted).\n";

void cmd_print_overview(FILE *f)
{
	struct buf b = BUF_INIT(0);

	buf_adds(&b, "usage: constel [-i FILE] [--ssh-config FILE] [--json] [-v] COMMAND "
		     "[options] [HOST...]\n\ncommands:\n");
	for (size_t i = 0; cmd_table[i]; i++)
		if (!cmd_table[i]->hidden)
			buf_printf(&b, "  %-11s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
	buf_adds(&b, "\nglobal options (before or after the command):\n");
	opts_add_help(&b, cmd_global_opts);
	buf_printf(&b, "\n%s", exit_status_text);
	fputs(b.data, f);
	buf_release(&b);
}

void cmd_print_help(const struct cmd *c, FILE *f)
{
	struct buf b = BUF_INIT(0);

	add_usage(&b, c);
	buf_printf(&b, "\n%s\n", c->summary);
	if (c->opts[0].name) {
		buf_adds(&b, "\noptions:\n");
		opts_add_help(&b, c->opts);
	}
	buf_adds(&b, "\nglobal options (before or after the command):\n");
	opts_add_help(&b, cmd_global_opts);
	buf_printf(&b, "\n%s", exit_status_text);
	fputs(b.data, f);
	buf_release(&b);
}

int cmd_usage(const struct cmd *c)
{
	struct buf b = BUF_INIT(0);

	add_usage(&b, c);
	fprintf(stderr, "%s\n", b.data);
	buf_release(&b);
	return CMD_USAGE;
}

/* ---- the exit-2 document ---- */

static json_t *problems; /* the "errors" array */
static bool invalid;	 /* the inventory was found invalid, not the command line */

static void add_problem(json_t *o)
{
	if (!problems)
		problems = json_array();
	json_array_append_new(problems, o);
}

int cmd_error(const char *fmt, ...)
{
	va_list ap;
	char *msg;
	json_t *o = json_object();

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	fprintf(stderr, "constel: %s\n", msg);
	json_object_set_new(o, "message", json_string(msg));
	add_problem(o);
	free(msg);
	return CMD_USAGE;
}

/*
 * A problem of the inventory at file:line:col (line 0: no position); from
 * Nix, about the attribute path `attr`.
 */
static void add_invalid(const char *file, int line, int col, const char *attr, const char *message)
{
	json_t *o = json_object();

	json_object_set_new(o, "file", json_string(file));
	json_object_set_new(o, "line", line > 0 ? json_integer(line) : json_null());
	json_object_set_new(o, "column", line > 0 ? json_integer(col) : json_null());
	if (attr)
		json_object_set_new(o, "attribute", json_string(attr));
	json_object_set_new(o, "message", json_string(message));
	add_problem(o);
	invalid = true;
}

void cmd_print_problems(void)
{
	json_t *root = json_object();

	if (!problems) {
		/* every path to exit status 2 says why; this one did not */
		json_t *o = json_object();

		json_object_set_new(o, "message", json_string("bad usage"));
		add_problem(o);
	}
	json_object_set_new(root, "result", json_string(invalid ? "invalid" : "usage"));
	json_object_set_new(root, "errors", json_incref(problems));
	json_dumpf(root, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(root);
}

/* ---- inventory, graph, selection ---- */

/*
 * The evaluation options of the command being run (the last cmd_eval_arg()
 * was given), which an inventory from Nix is evaluated with too; NULL: the
 * command has none.
 */
static const struct cmd_eval_args *command_eval;

const char *cmd_inventory_name(const struct global_opts *g)
{
	if (g->inventory)
		return g->inventory;
	if (access("constellation.yaml", F_OK) < 0 && access("flake.nix", F_OK) == 0)
		return ".#constellation";
	return "constellation.yaml";
}

/*
 * A flake reference as a folder of this machine: a path (`.`, `./fleet`,
 * `/srv/fleet`) or `path:` one, made absolute; NULL for the other kinds
 * (`github:`, `git+file:` ...), which are given to Nix as they are.
 */
static char *flake_folder(const char *ref)
{
	char *path, *real;

	if (!strncmp(ref, "path:", 5))
		path = xstrndup(ref + 5, strcspn(ref + 5, "?#"));
	else if (!strchr(ref, ':'))
		path = xstrdup(*ref ? ref : ".");
	else
		return NULL;
	real = realpath(path, NULL);
	free(path);
	return real;
}

/*
 * Loads `spec`, FLAKE#ATTR: evaluates the attribute (deploy/eval.h, cached
 * by commit when the flake is a folder of a clean working tree) and
 * validates it as the YAML file is. Its hosts build from the same flake.
 */
static int load_flake_inventory(const struct global_opts *g, const char *spec,
	struct inventory **out, struct inv_errors *errors)
{
	const char *hash = strchr(spec, '#');
	char *ref = xstrndup(spec, (size_t)(hash - spec)), *dir = flake_folder(ref);
	const char *attr = hash[1] ? hash + 1 : "constellation";
	struct eval_flake_opts o = {0};
	struct build_set_eval eval = {0};
	struct provenance prov;
	struct buf log = BUF_INIT(1u << 20);
	json_t *value = NULL, *pos = NULL, *failures = NULL;
	char *hosts_flake = NULL;
	bool cached, have_prov = false;
	int ret = -1;

	memset(&prov, 0, sizeof(prov));
	if (!dir && !strchr(ref, ':')) {
		inv_errors_add(
			errors, spec, NULL, "cannot open the flake '%s': %s", ref, strerror(errno));
		goto out;
	}
	o.ref = dir ? dir : ref;
	o.attr = attr;
	o.root = dir;
	/* provenance_release() after any provenance_open(), as deploy's prepare does */
	have_prov = dir != NULL;
	if (dir && provenance_open(&prov, dir) == 0) {
		o.repo = prov.repo_path;
		o.root = prov.repo_path; /* Nix reads the flake from git: the whole tree */
		if (prov.head && !prov.dirty)
			o.commit = prov.head;
		/*
		 * The hosts build from the same flake: a folder of a clean tree
		 * is pinned to its commit when they are evaluated (deploy/eval.h);
		 * of a dirty one, read from git as it is, as the inventory was.
		 */
		if (!o.commit && provenance_flake_ref(o.repo, dir, ".", NULL, &hosts_flake) < 0)
			hosts_flake = NULL;
	}
	o.no_cache = getenv("CONSTEL_NO_EVAL_CACHE") != NULL;
	if (command_eval) {
		eval.jobs = command_eval->jobs > 0 ? (size_t)command_eval->jobs : 0;
		eval.max_memory_mb =
			command_eval->max_memory_mb > 0 ? (size_t)command_eval->max_memory_mb : 0;
		o.no_cache = o.no_cache || command_eval->no_cache;
		o.eval = &eval;
	}
	if (eval_flake_json(&o, &value, &pos, &cached, &failures, &log) < 0) {
		for (size_t i = 0; i < json_array_size(failures); i++) {
			json_t *f = json_array_get(failures, i);

			inv_errors_add(errors, spec,
				json_string_value(json_object_get(f, "attribute")),
				"cannot evaluate the inventory: %s",
				json_string_value(json_object_get(f, "message")));
		}
		goto out;
	}
	if (g->verbose)
		fprintf(stderr, "%s", log.data ? log.data : "");
	ret = inventory_load_json_errors(out, spec, attr, value, pos, dir ? dir : ".",
		hosts_flake ? hosts_flake : dir ? NULL : ref, errors);
out:
	if (ret < 0 && g->verbose && log.len)
		fprintf(stderr, "%s", log.data);
	if (have_prov)
		provenance_release(&prov);
	buf_release(&log);
	json_decref(value);
	json_decref(pos);
	json_decref(failures);
	free(hosts_flake);
	free(ref);
	free(dir);
	return ret;
}

/* Whether `path` is a folder holding a flake.nix: `-i DIR` means DIR#constellation. */
static bool is_flake_folder(const char *path)
{
	char *f = xasprintf("%s/flake.nix", path);
	bool yes = access(f, F_OK) == 0;

	free(f);
	return yes;
}

int cmd_inventory_load(const struct global_opts *g, struct inventory **out, struct inv_errors *errors)
{
	const char *spec = cmd_inventory_name(g);
	char *flake;
	int ret;

	if (strchr(spec, '#'))
		return load_flake_inventory(g, spec, out, errors);
	if (!is_flake_folder(spec))
		return inventory_load_errors(out, spec, errors);
	flake = xasprintf("%s#constellation", spec);
	ret = load_flake_inventory(g, flake, out, errors);
	free(flake);
	return ret;
}

int cmd_load_inventory(const struct global_opts *g, struct inventory **out)
{
	struct inv_errors errors = INV_ERRORS_INIT;

	if (cmd_inventory_load(g, out, &errors) == 0) {
		inv_errors_release(&errors);
		return CMD_OK;
	}
	for (size_t i = 0; i < errors.nr; i++) {
		const struct inv_error *e = &errors.v[i];
		char *line = inv_error_format(e);

		fprintf(stderr, "%s\n", line);
		free(line);
		add_invalid(e->file, e->line, e->col, e->attr, e->message);
	}
	if (errors.nr > 1)
		fprintf(stderr, "constel: %zu problems in '%s'; nothing was done\n", errors.nr,
			cmd_inventory_name(g));
	inv_errors_release(&errors);
	return CMD_USAGE;
}

/* Edges of every `uses` and `depends_on`; labelled (file:line:col) only when asked. */
static struct graph *graph_of(const struct inventory *inv, bool labels)
{
	const char **names = xcalloc(inv->nhosts + 1, sizeof(*names));
	struct graph *gr;

	for (size_t i = 0; i < inv->nhosts; i++)
		names[i] = inv->hosts[i].name;
	gr = graph_new(inv->nhosts, names);
	free(names);
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		graph_set_tags(gr, i, (const char *const *)h->tags.v, h->tags.nr);
		for (size_t j = 0; j < h->nrels; j++) {
			const struct inv_relation *r = &h->rels[j];
			char *label = NULL;

			if (r->kind == INV_WANTS)
				continue;
			if (labels)
				label = xasprintf("%s %s at %s:%d:%d", inv_rel_kind_name(r->kind),
					r->text, inv->path, r->pos.line, r->pos.col);
			graph_add_edge(gr, i, r->provider, label);
			free(label);
		}
	}
	return gr;
}

/*
 * The cycle report's edges ("  a → b: label" after the summary line) as
 * problems at the position of the entry that makes each edge.
 */
static void add_cycle_problems(const struct inventory *inv, const char *msg)
{
	static const char arrow[] = " → ";
	const char *nl = strchr(msg, '\n');
	char *summary = xstrndup(msg, nl ? (size_t)(nl - msg) : strlen(msg));
	size_t added = 0;

	while (nl) {
		const char *line = nl + 1, *a = strstr(line, arrow), *colon;
		char *consumer = NULL, *provider = NULL;
		long c, p;

		nl = strchr(line, '\n');
		if (!a || !(colon = strstr(a, ": ")))
			continue;
		while (*line == ' ')
			line++;
		consumer = xstrndup(line, (size_t)(a - line));
		provider = xstrndup(a + strlen(arrow), (size_t)(colon - a - strlen(arrow)));
		c = inventory_host_index(inv, consumer);
		p = inventory_host_index(inv, provider);
		for (size_t j = 0; c >= 0 && p >= 0 && j < inv->hosts[c].nrels; j++) {
			const struct inv_relation *r = &inv->hosts[c].rels[j];
			char *text;

			if (r->kind == INV_WANTS || r->provider != (uint32_t)p)
				continue;
			text = xasprintf("%s; %s → %s: %s %s", summary, consumer, provider,
				inv_rel_kind_name(r->kind), r->text);
			add_invalid(inv->path, r->pos.line, r->pos.col, NULL, text);
			free(text);
			added++;
			break;
		}
		free(consumer);
		free(provider);
	}
	if (!added)
		add_invalid(inv->path, 0, 0, NULL, summary);
	free(summary);
}

int cmd_build_graph(const struct inventory *inv, struct graph **out)
{
	struct graph *gr = graph_of(inv, false);
	char *msg = NULL;

	*out = NULL;
	if (graph_check_cycles(gr, NULL) == 0) {
		*out = gr;
		return CMD_OK;
	}
	/* a cycle: only now is it worth saying which entry made each edge */
	graph_free(gr);
	gr = graph_of(inv, true);
	graph_check_cycles(gr, &msg);
	fprintf(stderr, "%s: %s\n", inv->path, msg ? msg : error_last());
	add_cycle_problems(inv, msg ? msg : error_last());
	free(msg);
	graph_free(gr);
	return CMD_USAGE;
}

int cmd_load_selection(const struct global_opts *g, const struct strvec *patterns, bool with_deps,
	struct inventory **inv, struct graph **graph, bool **selected)
{
	int ret;

	*inv = NULL;
	*graph = NULL;
	*selected = NULL;
	if ((ret = cmd_load_inventory(g, inv)) != CMD_OK)
		return ret;
	if ((ret = cmd_build_graph(*inv, graph)) != CMD_OK)
		return ret;
	*selected = xcalloc((*inv)->nhosts + 1, sizeof(**selected));
	if (graph_select(*graph, (const char *const *)patterns->v, patterns->nr, with_deps,
		    *selected) < 0)
		return cmd_error("%s", error_last());
	return CMD_OK;
}

bool cmd_eval_arg(struct cmd_eval_args *a, const struct opts_value *v)
{
	command_eval = a;
	switch (v->opt->id) {
	case CMD_OPT_EVAL_JOBS:
		a->jobs = v->num;
		return true;
	case CMD_OPT_EVAL_MAX_MEMORY:
		a->max_memory_mb = v->num;
		return true;
	case CMD_OPT_NO_EVAL_CACHE:
		a->no_cache = true;
		return true;
	}
	return false;
}

void cmd_split_list(struct strvec *patterns, const char *list)
{
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n)
			strvec_push_nodup(patterns, xstrndup(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
}

json_t *cmd_json_textn(const char *s, size_t n)
{
	struct buf b = BUF_INIT(0);
	json_t *j;

	if (!s)
		return json_null();
	buf_add_sanitized(&b, s, n);
	j = json_stringn(b.data ? b.data : "", b.len);
	buf_release(&b);
	return j ? j : json_null();
}

json_t *cmd_json_text(const char *s)
{
	return cmd_json_textn(s, s ? strlen(s) : 0);
}

json_t *cmd_json_seconds(double seconds)
{
	/* no libm: seconds are never negative, so adding a half and cutting rounds */
	if (seconds < 0)
		seconds = 0;
	return json_real((double)(long long)(seconds * 1000 + 0.5) / 1000);
}
