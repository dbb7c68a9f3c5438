/*
 * constel status: per host, what runs there, which commit it came from and
 * how it drifted from what the repository's HEAD builds (deploy/status.h
 * finds out; this prints).
 */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "deploy/provenance.h"
#include "deploy/status.h"

/* The store path without /nix/store/ and with the hash cut, for the table. */
static const char *short_path(const char *path, char *buf, size_t n)
{
	const char *base;

	if (!path)
		return "-";
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strlen(base) > 33 && base[32] == '-')
		snprintf(buf, n, "%.7s…%s", base, base + 32);
	else
		snprintf(buf, n, "%s", base);
	return buf;
}

static void print_table(
	const struct status_report *s, const struct inventory *inv, const struct provenance *p)
{
	size_t w = 4;

	if (p->repo_path)
		printf("repository %s at %.8s%s\n", p->repo_path, p->head ? p->head : "(no commit)",
			p->dirty ? " (working tree has changes)" : "");
	for (size_t i = 0; i < s->nrows; i++) {
		size_t l = strlen(inv->hosts[s->rows[i].host].name);

		if (l > w)
			w = l;
	}
	printf("%-*s  %-15s  %4s  %-14s  %6s  %-20s  %s\n", (int)w, "HOST", "DRIFT", "GEN",
		"REVISION", "BEHIND", "SWITCHED", "CURRENT");
	for (size_t i = 0; i < s->nrows; i++) {
		const struct status_row *r = &s->rows[i];
		char rev[32], gen[24], behind[24], path[128];

		snprintf(rev, sizeof(rev), "%.8s%s", r->revision ? r->revision : "-",
			r->dirty ? "+dirty" : "");
		snprintf(gen, sizeof(gen), "%ld", r->generation);
		snprintf(behind, sizeof(behind), "%ld", r->behind);
		printf("%-*s  %-15s  %4s  %-14s  %6s  %-20s  %s\n", (int)w,
			inv->hosts[r->host].name, status_drift_name(r->drift),
			r->generation >= 0 ? gen : "-", rev, r->behind >= 0 ? behind : "-",
			r->switched ? r->switched : "-",
			short_path(r->current, path, sizeof(path)));
	}
}

static void print_json(const struct status_report *s, const struct inventory *inv)
{
	json_t *root = json_object(), *hosts = json_array();

	for (size_t i = 0; i < s->nrows; i++) {
		const struct status_row *r = &s->rows[i];
		json_t *o = json_object();

#define STR_OR_NULL(x) cmd_json_text(x)
		json_object_set_new(o, "name", json_string(inv->hosts[r->host].name));
		json_object_set_new(o, "reachable", json_boolean(r->reachable));
		json_object_set_new(o, "current", STR_OR_NULL(r->current));
		json_object_set_new(o, "generation",
			r->generation >= 0 ? json_integer(r->generation) : json_null());
		json_object_set_new(o, "revision", STR_OR_NULL(r->revision));
		json_object_set_new(o, "expected", STR_OR_NULL(r->expected));
		json_object_set_new(o, "drift", json_string(status_drift_name(r->drift)));
		json_object_set_new(
			o, "behind", r->behind >= 0 ? json_integer(r->behind) : json_null());
		json_object_set_new(o, "switched", STR_OR_NULL(r->switched));
		json_object_set_new(o, "locked", json_boolean(r->locked));
		json_object_set_new(o, "interrupted", STR_OR_NULL(r->interrupted));
#undef STR_OR_NULL
		json_array_append_new(hosts, o);
	}
	json_object_set_new(root, "hosts", hosts);
	json_dumpf(root, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(root);
}

enum { STATUS_NO_EVAL = CMD_OPT_OWN };

/* What is wrong with a host beyond its drift, on stderr; CMD_FAILED unless every host is in sync. */
static int print_warnings(const struct status_report *rep, const struct inventory *inv)
{
	int ret = CMD_OK;

	for (size_t i = 0; i < rep->warnings.nr; i++)
		fprintf(stderr, "constel: %s\n", rep->warnings.v[i]);
	for (size_t i = 0; i < rep->nrows; i++) {
		const struct status_row *r = &rep->rows[i];
		const char *name = inv->hosts[r->host].name;

		if (r->error)
			fprintf(stderr, "constel: %s: unreachable: %s\n", name, r->error);
		if (r->eval_error)
			fprintf(stderr, "constel: %s: cannot evaluate its system: %s\n", name,
				r->eval_error);
		if (r->locked)
			fprintf(stderr, "constel: %s: a deploy is running on it now\n", name);
		if (r->interrupted)
			fprintf(stderr,
				"constel: %s: run %s was interrupted half-way; the next deploy "
				"restores what it found\n",
				name, r->interrupted);
		if (r->drift != STATUS_IN_SYNC)
			ret = CMD_FAILED;
	}
	return ret;
}

static int status(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct strvec patterns = STRVEC_INIT;
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	bool *selected = NULL, eval = true;
	struct provenance prov;
	struct status_opts so = {0};
	struct status_report rep = {0};
	long parallel = 0;
	struct cmd_eval_args ea = {0};
	int ret;

	memset(&prov, 0, sizeof(prov));
	(void)self;
	for (size_t i = 0; i < opts->nr; i++) {
		if (cmd_eval_arg(&ea, &opts->v[i]))
			continue;
		switch (opts->v[i].opt->id) {
		case STATUS_NO_EVAL:
			eval = false;
			break;
		case CMD_OPT_ON:
			cmd_split_list(&patterns, opts->v[i].arg);
			break;
		case CMD_OPT_PARALLEL:
			parallel = opts->v[i].num;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	for (size_t i = 0; i < opts->nargs; i++)
		strvec_push(&patterns, opts->args[i]);
	if ((ret = cmd_load_selection(g, &patterns, false, &inv, &graph, &selected)) != CMD_OK)
		goto out;
	if (provenance_open(&prov, inv->dir) < 0)
		fprintf(stderr, "constel: no revisions: %s\n", error_last());
	so.inv = inv;
	so.selected = selected;
	so.prov = &prov;
	so.eval = eval;
	so.how.jobs = ea.jobs > 0 ? (size_t)ea.jobs : 0;
	so.how.max_memory_mb = ea.max_memory_mb > 0 ? (size_t)ea.max_memory_mb : 0;
	so.how.no_cache = ea.no_cache;
	so.ssh_config = g->ssh_config ? g->ssh_config : inv->defaults.ssh_config;
	so.parallel = parallel ? parallel : inv->defaults.parallel;
	status_collect(&so, &rep);
	ret = print_warnings(&rep, inv);
	if (g->json)
		print_json(&rep, inv);
	else
		print_table(&rep, inv, &prov);
out:
	status_report_release(&rep);
	provenance_release(&prov);
	free(selected);
	graph_free(graph);
	inventory_free(inv);
	strvec_release(&patterns);
	return ret;
}

static const struct opt status_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_PARALLEL("hosts asked at once (default: the inventory's, else 10)"),
	{.name = "no-eval",
		.kind = OPT_FLAG,
		.id = STATUS_NO_EVAL,
		.help = "do not evaluate what the repository builds now (no drift against it)"},
	CMD_OPTION_EVAL_JOBS,
	CMD_OPTION_EVAL_MAX_MEMORY,
	CMD_OPTION_NO_EVAL_CACHE,
	{NULL},
};

const struct cmd cmd_status_entry = {
	.name = "status",
	.opts = status_opts,
	.args = "[HOST...]",
	.summary = "per host: current system, generation, revision, drift",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = status,
};
