/* constel exec: runs a command on the selected hosts in parallel, output per host. */
#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/pool.h"
#include "deploy/host_io.h"

/* Each host's output is kept whole, up to this much per stream. */
#define EXEC_OUTPUT_MAX (4u << 20)

struct exec_job {
	const struct inventory *inv;
	const struct global_opts *g;
	const char *cmd;
	size_t *hosts;
	size_t nhosts;
	size_t next; /* the next host to take, under the pool's lock */
	struct exec_host *out;
};

struct exec_host {
	struct ssh_exec_result res;
	char *error; /* could not run at all */
	double seconds;
};

static bool exec_next(void *data, size_t *task)
{
	struct exec_job *j = data;

	if (j->next >= j->nhosts)
		return false;
	*task = j->next++;
	return true;
}

static void exec_run(void *data, size_t i)
{
	struct exec_job *j = data;
	struct host_io_config cfg = {
		.ssh_config = j->g->ssh_config ? j->g->ssh_config : j->inv->defaults.ssh_config,
		.connect_timeout = j->inv->defaults.connect_timeout,
	};
	struct exec_host *o = &j->out[i];
	struct host_io io;
	double start = now_seconds();

	host_io_init(&io, &j->inv->hosts[j->hosts[i]], &cfg);
	if (host_io_open(&io) < 0 || host_io_exec(&io, j->cmd, NULL, &o->res) < 0)
		o->error = xstrdup(error_last());
	host_io_close(&io);
	o->seconds = now_seconds() - start;
}

static const struct pool_ops exec_pool = {.next = exec_next, .run = exec_run};

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

static void print_block(const char *name, const struct exec_host *o)
{
	const struct buf *streams[2] = {&o->res.out, &o->res.err};

	if (o->error)
		printf("=== %s: unreachable: %s\n", name, o->error);
	else
		printf("=== %s: exit %d (%.1fs)\n", name, o->res.exit_status, o->seconds);
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

enum { EXEC_PREFIX = CMD_OPT_OWN };

static int exec_cmd(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct exec_job j = {0};
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	struct strvec patterns = STRVEC_INIT;
	struct buf cmd = BUF_INIT(0);
	bool *selected = NULL, prefix = false;
	long parallel = -1;
	size_t nthreads = 0, failed = 0;
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
	j.inv = inv;
	j.g = g;
	j.cmd = cmd.data;
	j.hosts = xcalloc(inv->nhosts + 1, sizeof(*j.hosts));
	for (size_t i = 0; i < inv->nhosts; i++)
		if (selected[i])
			j.hosts[j.nhosts++] = i;
	j.out = xcalloc(j.nhosts + 1, sizeof(*j.out));
	for (size_t i = 0; i < j.nhosts; i++)
		ssh_exec_result_init(&j.out[i].res, EXEC_OUTPUT_MAX, EXEC_OUTPUT_MAX);
	nthreads = (size_t)(parallel > 0 ? parallel : inv->defaults.parallel);
	if (nthreads > j.nhosts)
		nthreads = j.nhosts;
	pool_run(&exec_pool, &j, nthreads);

	/* one printer, after the fact: each host's output whole, never interleaved */
	for (size_t i = 0; i < j.nhosts; i++) {
		const char *name = inv->hosts[j.hosts[i]].name;
		struct exec_host *o = &j.out[i];

		if (o->error || o->res.exit_status != 0)
			failed++;
		if (g->json)
			continue;
		if (prefix) {
			if (o->error)
				printf("%s: unreachable: %s\n", name, o->error);
			print_prefixed(name, &o->res.out, stdout);
			print_prefixed(name, &o->res.err, stdout);
		} else {
			print_block(name, o);
		}
	}
	if (g->json) {
		json_t *root = json_object(), *hosts = json_array();

		for (size_t i = 0; i < j.nhosts; i++) {
			struct exec_host *o = &j.out[i];
			json_t *h = json_object();

			json_object_set_new(h, "name", json_string(inv->hosts[j.hosts[i]].name));
			json_object_set_new(h, "reachable", json_boolean(!o->error));
			json_object_set_new(h, "exit",
				o->error ? json_null() : json_integer(o->res.exit_status));
			json_object_set_new(h, "stdout",
				cmd_json_textn(
					o->res.out.data ? o->res.out.data : "", o->res.out.len));
			json_object_set_new(h, "stderr",
				cmd_json_textn(
					o->res.err.data ? o->res.err.data : "", o->res.err.len));
			json_object_set_new(h, "error", cmd_json_text(o->error));
			json_object_set_new(h, "seconds", cmd_json_seconds(o->seconds));
			json_array_append_new(hosts, h);
		}
		json_object_set_new(root, "result", json_string(failed ? "failed" : "ok"));
		json_object_set_new(root, "hosts", hosts);
		json_dumpf(root, stdout, CMD_JSON_FLAGS);
		fputc('\n', stdout);
		json_decref(root);
	}
	fprintf(stderr, "exec: %zu host%s, %zu ok, %zu failed or unreachable\n", j.nhosts,
		j.nhosts == 1 ? "" : "s", j.nhosts - failed, failed);
	ret = failed ? CMD_FAILED : CMD_OK;
out:
	if (j.out)
		for (size_t i = 0; i < j.nhosts; i++) {
			ssh_exec_result_release(&j.out[i].res);
			free(j.out[i].error);
		}
	free(j.out);
	free(j.hosts);
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
