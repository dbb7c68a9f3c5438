/* constel plan: validates the inventory and prints the order of the selection. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

/*
 * Waves of the selection: a selected host goes one wave after its latest
 * selected provider. Unselected providers are taken as deployed already, as
 * the runner takes them. `order` is the selection in dependency order.
 */
static void selection_waves(const struct graph *g, const bool *selected, const size_t *order,
	size_t norder, int *wave, size_t *nwaves)
{
	*nwaves = 0;
	for (size_t i = 0; i < norder; i++) {
		size_t h = order[i], n;
		const struct graph_dep *deps = graph_providers(g, h, &n);
		int w = 0;

		for (size_t j = 0; j < n; j++)
			if (selected[deps[j].host] && wave[deps[j].host] + 1 > w)
				w = wave[deps[j].host] + 1;
		wave[h] = w;
		if ((size_t)w + 1 > *nwaves)
			*nwaves = (size_t)w + 1;
	}
}

static json_t *string_array(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void print_json(const struct inventory *inv, const struct graph *g, const size_t *order,
	size_t norder, const int *wave, size_t nwaves)
{
	json_t *root = json_object(), *hosts = json_array(), *waves = json_array();

	for (size_t w = 0; w < nwaves; w++)
		json_array_append_new(waves, json_array());
	for (size_t i = 0; i < norder; i++) {
		size_t h = order[i], n;
		const struct inv_host *host = &inv->hosts[h];
		const struct graph_dep *deps = graph_providers(g, h, &n);
		json_t *o = json_object(), *dep = json_array();

		for (size_t j = 0; j < n; j++)
			json_array_append_new(dep, json_string(graph_name(g, deps[j].host)));
		json_object_set_new(o, "name", json_string(host->name));
		json_object_set_new(o, "arch", json_string(host->arch));
		json_object_set_new(o, "wave", json_integer(wave[h]));
		json_object_set_new(o, "depends_on", dep);
		json_object_set_new(o, "tags",
			string_array((const char *const *)host->tags.v, host->tags.nr));
		json_array_append_new(hosts, o);
		json_array_append_new(json_array_get(waves, (size_t)wave[h]),
			json_string(host->name));
	}
	json_object_set_new(root, "hosts", hosts);
	json_object_set_new(root, "waves", waves);
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(root);
}

/* The `uses` entries of host h towards provider p, as "auth, ntfy". */
static void relation_list(const struct inv_host *h, size_t p, struct buf *b)
{
	bool first = true;

	for (size_t i = 0; i < h->nrels; i++) {
		if (h->rels[i].provider != p || h->rels[i].kind == INV_WANTS)
			continue;
		buf_printf(b, "%s%s%s%s", first ? "" : ", ",
			h->rels[i].kind == INV_DEPENDS_ON ? "depends_on " : "", h->rels[i].text,
			"");
		first = false;
	}
}

static void print_human(const struct inventory *inv, const struct graph *g, const bool *selected,
	const size_t *order, size_t norder, const int *wave, size_t nwaves)
{
	int width = 4;

	for (size_t i = 0; i < norder; i++) {
		int n = (int)strlen(inv->hosts[order[i]].name);

		if (n > width)
			width = n;
	}
	printf("%zu host%s in %zu wave%s (%s)\n", norder, norder == 1 ? "" : "s", nwaves,
		nwaves == 1 ? "" : "s", inv->path);
	for (size_t w = 0; w < nwaves; w++) {
		printf("wave %zu\n", w);
		for (size_t i = 0; i < norder; i++) {
			size_t h = order[i], n;
			const struct inv_host *host = &inv->hosts[h];
			const struct graph_dep *deps;
			struct buf b = BUF_INIT(0);

			if ((size_t)wave[h] != w)
				continue;
			deps = graph_providers(g, h, &n);
			for (size_t j = 0; j < n; j++) {
				size_t p = deps[j].host;

				buf_printf(&b, "%s%s (", b.len ? "; " : "after ", graph_name(g, p));
				relation_list(host, p, &b);
				buf_printf(&b, ")%s", selected[p] ? "" : " [not selected]");
			}
			if (b.len)
				printf("  %-*s  %-13s  %s\n", width, host->name, host->arch,
					b.data);
			else
				printf("  %-*s  %s\n", width, host->name, host->arch);
			buf_release(&b);
		}
	}
}

static const char *dot_arch_color(const char *arch)
{
	if (!strcmp(arch, "x86_64-linux"))
		return "lightblue";
	if (!strcmp(arch, "aarch64-linux"))
		return "palegreen";
	return "khaki";
}

/* Graphviz: arrows point from consumer to provider; `wants` are dashed. */
static void print_dot(const struct inventory *inv, const bool *selected)
{
	printf("digraph constellation {\n\trankdir=BT;\n\tnode [shape=box, style=filled];\n");
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		if (!selected[i])
			continue;
		printf("\t\"%s\" [label=\"%s\\n%s\", fillcolor=%s];\n", h->name, h->name, h->arch,
			dot_arch_color(h->arch));
	}
	for (size_t i = 0; i < inv->nhosts; i++) {
		const struct inv_host *h = &inv->hosts[i];

		if (!selected[i])
			continue;
		for (size_t j = 0; j < h->nrels; j++) {
			const struct inv_relation *r = &h->rels[j];

			if (!selected[r->provider])
				continue;
			printf("\t\"%s\" -> \"%s\" [label=\"%s\"%s];\n", h->name,
				inv->hosts[r->provider].name, r->service ? r->service : "depends",
				r->kind == INV_WANTS ? ", style=dashed" : "");
		}
	}
	printf("}\n");
}

int cmd_plan(int argc, char **argv, const struct global_opts *gopt)
{
	static const struct option longopts[] = {
		{ "dot", no_argument, NULL, 'd' },
		{ "on", required_argument, NULL, 'o' },
		{ "with-deps", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct inventory *inv = NULL;
	struct graph *g = NULL;
	struct strvec patterns = STRVEC_INIT;
	bool dot = false, with_deps = false, *selected = NULL;
	size_t *order = NULL, norder = 0, nwaves = 0;
	int *wave = NULL, c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dot = true;
			break;
		case 'o':
			cmd_split_list(&patterns, optarg);
			break;
		case 'w':
			with_deps = true;
			break;
		default:
			ret = cmd_usage(cmd_find("plan"));
			goto out;
		}
	}
	for (int i = optind; i < argc; i++)
		strvec_push(&patterns, argv[i]);

	if ((ret = cmd_load_inventory(gopt, &inv)) != CMD_OK)
		goto out;
	if ((ret = cmd_build_graph(inv, &g)) != CMD_OK)
		goto out;
	selected = xcalloc(inv->nhosts + 1, sizeof(*selected));
	if ((ret = cmd_select(inv, g, &patterns, with_deps, selected)) != CMD_OK)
		goto out;
	order = xcalloc(inv->nhosts + 1, sizeof(*order));
	wave = xcalloc(inv->nhosts + 1, sizeof(*wave));
	if (graph_order(g, selected, false, order, &norder) < 0) {
		fprintf(stderr, "constel: %s\n", error_last());
		ret = CMD_USAGE;
		goto out;
	}
	selection_waves(g, selected, order, norder, wave, &nwaves);
	if (dot)
		print_dot(inv, selected);
	else if (gopt->json)
		print_json(inv, g, order, norder, wave, nwaves);
	else
		print_human(inv, g, selected, order, norder, wave, nwaves);
	ret = fflush(stdout) == 0 ? CMD_OK : CMD_FAILED;
out:
	free(order);
	free(wave);
	free(selected);
	graph_free(g);
	inventory_free(inv);
	strvec_release(&patterns);
	return ret;
}
