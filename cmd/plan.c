/* constel plan: validates the inventory and prints the order of the selection. */
#include <assert.h>
#include <malloc.h>
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

/* Writes out what `out` holds once it is large enough (or `all` of it). */
static void flush_json(struct buf *out, bool all)
{
	if (out->len < (64u << 10) && !all)
		return;
	fwrite(out->data, 1, out->len, stdout);
	buf_reset(out);
}

/*
 * The plan as one compact JSON document, written through a small buffer: a
 * jansson document of a 20,000-host fleet (400,000 strings) cost more than
 * loading the inventory. Each name is quoted once, then copied.
 */
static void print_json(const struct inventory *inv, const struct graph *g, const size_t *order,
	size_t norder, const int *wave, size_t nwaves)
{
	struct buf out = BUF_INIT(0), names = BUF_INIT(0);
	size_t *at = xcalloc(inv->nhosts + 1, sizeof(*at));  /* host h: names.data + at[h] */
	size_t *start = xcalloc(nwaves + 2, sizeof(*start)); /* wave w: by_wave[start[w]..] */
	size_t *by_wave = xcalloc(norder + 1, sizeof(*by_wave));

	for (size_t h = 0; h < inv->nhosts; h++) {
		at[h] = names.len;
		buf_add_json_string(&names, inv->hosts[h].name);
	}
	at[inv->nhosts] = names.len;
#define NAME(h) names.data + at[h], at[(h) + 1] - at[h]

	buf_adds(&out, "{\"hosts\":[");
	for (size_t i = 0; i < norder; i++) {
		size_t h = order[i], n;
		const struct inv_host *host = &inv->hosts[h];
		const struct graph_dep *deps = graph_providers(g, h, &n);
		char num[32];

		buf_adds(&out, i ? ",{\"name\":" : "{\"name\":");
		buf_add(&out, NAME(h));
		buf_adds(&out, ",\"arch\":");
		buf_add_json_string(&out, host->arch);
		buf_add(&out, num, (size_t)snprintf(num, sizeof(num), ",\"wave\":%d", wave[h]));
		buf_adds(&out, ",\"depends_on\":[");
		for (size_t j = 0; j < n; j++) {
			if (j)
				buf_add(&out, ",", 1);
			buf_add(&out, NAME(deps[j].host));
		}
		flush_json(&out, false);
		buf_adds(&out, "],\"tags\":[");
		for (size_t j = 0; j < host->tags.nr; j++) {
			if (j)
				buf_add(&out, ",", 1);
			buf_add_json_string(&out, host->tags.v[j]);
		}
		buf_adds(&out, "]}");
	}

	/* the hosts of each wave, in the order of `order` (a counting sort) */
	for (size_t i = 0; i < norder; i++)
		start[wave[order[i]] + 1]++;
	for (size_t w = 0; w < nwaves; w++)
		start[w + 1] += start[w];
	for (size_t i = 0; i < norder; i++)
		by_wave[start[wave[order[i]]]++] = order[i];
	buf_adds(&out, "],\"waves\":[");
	for (size_t w = 0, i = 0; w < nwaves; w++) {
		buf_adds(&out, w ? ",[" : "[");
		for (size_t first = i; i < norder && (size_t)wave[by_wave[i]] == w; i++) {
			if (i != first)
				buf_add(&out, ",", 1);
			buf_add(&out, NAME(by_wave[i]));
			flush_json(&out, false);
		}
		buf_adds(&out, "]");
	}
#undef NAME
	buf_adds(&out, "]}\n");
	flush_json(&out, true);
	buf_release(&out);
	buf_release(&names);
	free(at);
	free(start);
	free(by_wave);
}

/* The `uses` entries of host h towards provider p, as "auth, ntfy". */
static void relation_list(const struct inv_host *h, size_t p, struct buf *b)
{
	bool first = true;

	for (size_t i = 0; i < h->nrels; i++) {
		if (h->rels[i].provider != p || h->rels[i].kind == INV_WANTS)
			continue;
		buf_printf(b, "%s%s%s", first ? "" : ", ",
			h->rels[i].kind == INV_DEPENDS_ON ? "depends_on " : "", h->rels[i].text);
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

/*
 * A host's node: name, arch, its services (name:port, three a line) and
 * tags. Names, services and tags are validated (letters, digits, '-', '_',
 * '.'), so nothing needs quoting inside the label.
 */
static void dot_node(const struct inv_host *h)
{
	printf("\t\"%s\" [label=\"%s\\n%s", h->name, h->name, h->arch);
	for (size_t i = 0; i < h->nservices; i++)
		printf("%s%s:%d", i % 3 ? ", " : "\\n", h->services[i].name, h->services[i].port);
	for (size_t i = 0; i < h->tags.nr; i++)
		printf("%s@%s", i ? " " : "\\n", h->tags.v[i]);
	printf("\", fillcolor=%s];\n", dot_arch_color(h->arch));
}

/*
 * Graphviz: arrows point from consumer to provider, providers drawn above.
 * `wants` are dashed and do not rank the layout (constraint=false): they
 * order nothing, and mutual ones would otherwise pull a provider below its
 * consumer.
 */
static void print_dot(const struct inventory *inv, const bool *selected)
{
	printf("digraph constellation {\n\trankdir=BT;\n\tnode [shape=box, style=filled];\n");
	for (size_t i = 0; i < inv->nhosts; i++)
		if (selected[i])
			dot_node(&inv->hosts[i]);
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
				r->kind == INV_WANTS ? ", style=dashed, constraint=false" : "");
		}
	}
	/* legend nodes are named with a space: no host name can take one */
	printf("\tsubgraph cluster_legend {\n"
	       "\t\tlabel=\"legend\";\n\t\tcolor=gray;\n\t\tfontsize=10;\n"
	       "\t\tnode [shape=plaintext, style=\"\", fontsize=10];\n"
	       "\t\tedge [fontsize=10];\n"
	       "\t\t\"legend consumer\" [label=\"consumer\"];\n"
	       "\t\t\"legend provider\" [label=\"provider\"];\n"
	       "\t\t\"legend wants\" [label=\"host\"];\n"
	       "\t\t\"legend wanted\" [label=\"wanted\"];\n"
	       "\t\t\"legend consumer\" -> \"legend provider\" "
	       "[label=\"uses, depends_on: provider first\"];\n"
	       "\t\t\"legend wants\" -> \"legend wanted\" [label=\"wants: no order\", "
	       "style=dashed];\n"
	       "\t}\n}\n");
}

enum { PLAN_DOT = CMD_OPT_OWN };

static int plan(const struct cmd *self, const struct opts *opts, const struct global_opts *gopt)
{
	struct inventory *inv = NULL;
	struct graph *g = NULL;
	struct strvec patterns = STRVEC_INIT;
	bool dot = false, with_deps = false, *selected = NULL;
	size_t *order = NULL, norder = 0, nwaves = 0;
	int *wave = NULL, ret;

	(void)self;
	for (size_t i = 0; i < opts->nr; i++) {
		switch (opts->v[i].opt->id) {
		case PLAN_DOT:
			dot = true;
			break;
		case CMD_OPT_ON:
			cmd_split_list(&patterns, opts->v[i].arg);
			break;
		case CMD_OPT_WITH_DEPS:
			with_deps = true;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	for (size_t i = 0; i < opts->nargs; i++)
		strvec_push(&patterns, opts->args[i]);
	/*
	 * Plan frees its large arrays (the YAML tree, the indexes) before it
	 * makes others (the graph, the output). Kept in the heap rather than
	 * returned to the system, their pages serve again instead of new ones
	 * being faulted in: 4,000 fewer faults on 20,000 hosts, at 1.4 us each
	 * on a VM. The process ends soon after, so nothing is held for long.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);

	if ((ret = cmd_load_selection(gopt, &patterns, with_deps, &inv, &g, &selected)) != CMD_OK)
		goto out;
	order = xcalloc(inv->nhosts + 1, sizeof(*order));
	wave = xcalloc(inv->nhosts + 1, sizeof(*wave));
	if (graph_order(g, selected, false, order, &norder) < 0) {
		ret = cmd_error("%s", error_last());
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

static const struct opt plan_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_WITH_DEPS,
	{.name = "dot",
		.kind = OPT_FLAG,
		.id = PLAN_DOT,
		.help = "print a Graphviz digraph instead (uses solid, wants dashed)"},
	{NULL},
};

const struct cmd cmd_plan_entry = {
	.name = "plan",
	.opts = plan_opts,
	.args = "[HOST...]",
	.summary = "validate the inventory and print the deployment order",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = plan,
};
