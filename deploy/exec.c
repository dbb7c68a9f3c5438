#include "deploy/exec.h"

#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "deploy/host_io.h"

struct exec_job {
	const struct inventory *inv;
	const size_t *hosts;
	size_t n;
	const char *cmd;
	const char *ssh_config;
	bool as_root;
	struct exec_output *out;
};

static void exec_run(void *data, size_t i)
{
	struct exec_job *j = data;
	struct host_io_config cfg = {
		.ssh_config = j->ssh_config ? j->ssh_config : j->inv->defaults.ssh_config,
		.connect_timeout = j->inv->defaults.connect_timeout,
	};
	struct exec_output *o = &j->out[i];
	struct ssh_exec_result res;
	struct host_io io;
	struct host_exec how = {.as_root = j->as_root};
	double start = now_seconds();

	ssh_exec_result_init(&res, EXEC_OUTPUT_MAX, EXEC_OUTPUT_MAX);
	host_io_init(&io, &j->inv->hosts[j->hosts[i]], &cfg);
	if (host_io_open(&io) < 0 || host_io_exec(&io, j->cmd, &how, &res) < 0)
		o->error = xstrdup(error_last());
	host_io_close(&io);
	o->exit_status = res.exit_status;
	o->out = res.out;
	o->err = res.err;
	memset(&res.out, 0, sizeof(res.out));
	memset(&res.err, 0, sizeof(res.err));
	ssh_exec_result_release(&res);
	o->seconds = now_seconds() - start;
}

static const struct pool_ops exec_pool = {.run = exec_run};

size_t exec_hosts(const struct inventory *inv, const size_t *hosts, size_t n, const char *cmd,
	const char *ssh_config, size_t parallel, bool as_root, struct exec_output *out)
{
	/* as root: `BECOME sh -c CMD`, the shape of constel's own commands (docs/become.md) */
	char *quoted = shell_quote(cmd), *wrapped = xasprintf("sh -c %s", quoted);
	struct exec_job j = {inv, hosts, n, as_root ? wrapped : cmd, ssh_config, as_root, out};
	size_t failed = 0;

	memset(out, 0, n * sizeof(*out));
	pool_run_tasks(&exec_pool, &j, n, parallel);
	for (size_t i = 0; i < n; i++)
		failed += out[i].error || out[i].exit_status != 0;
	free(quoted);
	free(wrapped);
	return failed;
}

void exec_output_release(struct exec_output *o)
{
	buf_release(&o->out);
	buf_release(&o->err);
	free(o->error);
	memset(o, 0, sizeof(*o));
}
