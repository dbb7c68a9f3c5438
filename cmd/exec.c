/* constel exec: runs a command on the selected hosts in parallel, output per host. */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "deploy/exec.h"

static void print_prefixed(const char *name, const struct buf *b, FILE *f)
{
	for (const char *line = b->data; line && *line;) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		struct buf safe = BUF_INIT(0);

		buf_add_sanitized(&safe, line, (size_t)len);
		fprintf(f, "%s: %s\n", name, safe.data ? safe.data : "");
		buf_release(&safe);
		line = nl ? nl + 1 : NULL;
	}
}

static void print_block(const char *name, const struct exec_output *o)
{
	const struct buf *streams[2] = {&o->out, &o->err};

	if (o->error)
		printf("=== %s: unreachable: %s\n", name, o->error);
	else
		printf("=== %s: exit %d (%.1fs)\n", name, o->exit_status, o->seconds);
	for (int s = 0; s < 2; s++) {
		const struct buf *b = streams[s];

		if (!b->len)
			continue;
		struct buf safe = BUF_INIT(0);

		/* what a host prints reaches this terminal: no escape sequences */
		buf_add_sanitized(&safe, b->data, b->len);
		fwrite(safe.data, 1, safe.len, stdout);
		buf_release(&safe);
		if (b->data[b->len - 1] != '\n')
			putchar('\n');
		if (b->truncated)
			printf("[%s output cut at %u MiB]\n", name, EXEC_OUTPUT_MAX >> 20);
	}
}

enum { EXEC_PREFIX = CMD_OPT_OWN, EXEC_BECOME };

static void print_text(const struct inventory *inv, const size_t *hosts, size_t n,
	const struct exec_output *out, bool prefix)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = inv->hosts[hosts[i]].name;
		const struct exec_output *o = &out[i];

		if (!prefix) {
			print_block(name, o);
			continue;
		}
		if (o->error)
			printf("%s: unreachable: %s\n", name, o->error);
		print_prefixed(name, &o->out, stdout);
		print_prefixed(name, &o->err, stdout);
	}
}

static void print_json(const struct inventory *inv, const size_t *hosts, size_t n,
	const struct exec_output *out, size_t failed)
{
	json_t *root = json_object(), *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct exec_output *o = &out[i];
		json_t *h = json_object();

		json_object_set_new(h, "name", json_string(inv->hosts[hosts[i]].name));
		json_object_set_new(h, "reachable", json_boolean(!o->error));
		json_object_set_new(h, "exit", o->error ? json_null() : json_integer(o->exit_status));
		json_object_set_new(h, "stdout",
			cmd_json_textn(o->out.data ? o->out.data : "", o->out.len));
		json_object_set_new(h, "stderr",
			cmd_json_textn(o->err.data ? o->err.data : "", o->err.len));
		json_object_set_new(h, "error", cmd_json_text(o->error));
		json_object_set_new(h, "seconds", cmd_json_seconds(o->seconds));
		json_array_append_new(arr, h);
	}
	json_object_set_new(root, "result", json_string(failed ? "failed" : "ok"));
	json_object_set_new(root, "hosts", arr);
	json_dumpf(root, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(root);
}

static int exec_cmd(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	struct strvec patterns = STRVEC_INIT;
	struct buf cmd = BUF_INIT(0);
	struct exec_output *out = NULL;
	bool *selected = NULL, prefix = false, as_root = false;
	long parallel = -1;
	size_t *hosts = NULL, n = 0, failed;
	int ret;

	if (opts->ndash >= opts->nargs) {
		cmd_error("exec needs a command after '--'");
		return cmd_usage(self);
	}
	for (size_t i = 0; i < opts->nr; i++) {
		switch (opts->v[i].opt->id) {
		case CMD_OPT_ON:
			cmd_split_list(&patterns, opts->v[i].arg);
			break;
		case CMD_OPT_PARALLEL:
			parallel = opts->v[i].num;
			break;
		case EXEC_PREFIX:
			prefix = true;
			break;
		case EXEC_BECOME:
			as_root = true;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	for (size_t i = 0; i < opts->ndash; i++)
		strvec_push(&patterns, opts->args[i]);
	/* the words after -- are one command line, as ssh joins them */
	for (size_t i = opts->ndash; i < opts->nargs; i++)
		buf_printf(&cmd, "%s%s", i > opts->ndash ? " " : "", opts->args[i]);
	if ((ret = cmd_load_selection(g, &patterns, false, &inv, &graph, &selected)) != CMD_OK)
		goto out;
	hosts = xcalloc(inv->nhosts + 1, sizeof(*hosts));
	for (size_t i = 0; i < inv->nhosts; i++)
		if (selected[i])
			hosts[n++] = i;
	out = xcalloc(n + 1, sizeof(*out));
	failed = exec_hosts(inv, hosts, n, cmd.data, g->ssh_config,
		(size_t)(parallel > 0 ? parallel : inv->defaults.parallel), as_root, out);
	/* one printer, after the fact: each host's output whole, never interleaved */
	if (g->json)
		print_json(inv, hosts, n, out, failed);
	else
		print_text(inv, hosts, n, out, prefix);
	fprintf(stderr, "exec: %zu host%s, %zu ok, %zu failed or unreachable\n", n,
		n == 1 ? "" : "s", n - failed, failed);
	ret = failed ? CMD_FAILED : CMD_OK;
	for (size_t i = 0; i < n; i++)
		exec_output_release(&out[i]);
out:
	free(out);
	free(hosts);
	free(selected);
	graph_free(graph);
	inventory_free(inv);
	strvec_release(&patterns);
	buf_release(&cmd);
	return ret;
}

static const struct opt exec_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_PARALLEL("hosts run on at once (default: the inventory's, else 10)"),
	{.name = "prefix",
		.kind = OPT_FLAG,
		.id = EXEC_PREFIX,
		.help = "print output line by line, each line prefixed with its host"},
	{.name = "become",
		.kind = OPT_FLAG,
		.id = EXEC_BECOME,
		.help = "run the command as root, through each host's become (sudo -n)"},
	{NULL},
};

const struct cmd cmd_exec_entry = {
	.name = "exec",
	.opts = exec_opts,
	.args = "[HOST...] -- CMD...",
	.summary = "run a command on the selected hosts in parallel",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = exec_cmd,
};
