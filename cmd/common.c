/* The command table and what the commands share: loading, graph, selection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

const struct cmd cmd_table[] = {
	{ "plan", cmd_plan, "[--json] [--dot] [--on LIST] [--with-deps] [HOST...]",
		"validate the inventory and print the deployment order" },
	{ "build", cmd_build, "[--json] [--on LIST] [--with-deps] [HOST...]",
		"build the selected hosts' systems and print host and store path" },
	{ "deploy", cmd_deploy,
		"[--on LIST] [--with-deps] [--goal G] [--parallel N] [--confirm-timeout S]\n"
		"       [--no-magic-rollback] [--no-auto-rollback] [--rollback-fleet] [--dry-run]\n"
		"       [--build-on local|target] [--activation-timeout S] [--health-timeout S]\n"
		"       [--rev REF] [--allow-dirty] [--log-dir DIR] [HOST...]",
		"build, copy, activate, confirm and health-check, in dependency order" },
	{ "rollback", cmd_rollback, "[--to N] [--parallel N] [--confirm-timeout S] HOST...",
		"switch hosts back to their previous (or Nth) generation" },
	{ "status", cmd_status, "[--json] [--no-eval] [--on LIST] [--parallel N] [HOST...]",
		"per host: current system, generation, revision, drift" },
	{ "log", cmd_log, "[--json] [HOST]", "the deployment history recorded in git notes" },
	{ "exec", cmd_exec, "[--on LIST] [--parallel N] [--prefix] [--json] [HOST...] -- CMD",
		"run a command on the selected hosts in parallel" },
	{ NULL, NULL, NULL, NULL },
};

const struct cmd *cmd_find(const char *name)
{
	for (const struct cmd *c = cmd_table; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

int cmd_usage(const struct cmd *c)
{
	fprintf(stderr, "usage: constel %s %s\n", c->name, c->usage);
	return CMD_USAGE;
}

int cmd_load_inventory(const struct global_opts *g, struct inventory **out)
{
	struct strvec errors = STRVEC_INIT;

	if (inventory_load(out, g->inventory, &errors) == 0) {
		strvec_release(&errors);
		return CMD_OK;
	}
	for (size_t i = 0; i < errors.nr; i++)
		fprintf(stderr, "%s\n", errors.v[i]);
	if (errors.nr > 1)
		fprintf(stderr, "constel: %zu problems in '%s'; nothing was done\n", errors.nr,
			g->inventory);
	strvec_release(&errors);
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
		    *selected) < 0) {
		fprintf(stderr, "constel: %s\n", error_last());
		return CMD_USAGE;
	}
	return CMD_OK;
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

