#include "deploy/host_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/proc.h"
#include "deploy/host.h"

#define CLOSURE_LIST_MAX (16u << 20)

/* ---- over SSH ---- */

static int ssh_connect_(struct host_io *io)
{
	struct ssh_target t;
	struct ssh_conn *conn = NULL;
	int ret;

	host_ssh_target(
		&t, io->host, io->cfg.ssh_config, io->cfg.connect_timeout, io->cfg.op_timeout);
	if ((ret = ssh_conn_open(&conn, &t)) < 0)
		return ret;
	ssh_conn_free(io->conn);
	io->conn = conn;
	io->sessions++;
	return 0;
}

static int ssh_exec_(
	struct host_io *io, const char *cmd, const struct host_exec *o, struct ssh_exec_result *res)
{
	struct ssh_exec_opts e = SSH_EXEC_OPTS_INIT;

	if (!io->conn)
		return error_set("'%s': not connected", io->host->name);
	e.stdin_data = o ? o->input : NULL;
	e.stdin_len = o && o->input ? strlen(o->input) : 0;
	e.timeout_s = o ? (int)o->timeout : 0;
	e.overflow_fails = true;
	e.cancel = o ? o->cancel : NULL;
	return ssh_conn_exec_opts(io->conn, cmd, &e, res);
}

static int ssh_probe_(struct host_io *io, int port, int timeout_ms)
{
	if (!io->conn)
		return error_set("'%s': not connected", io->host->name);
	return ssh_conn_probe(io->conn, port, timeout_ms);
}

/* The closure of a store path, in dependency order (the local store knows it). */
static int closure_of(const char *path, struct strvec *paths)
{
	const char *argv[] = {"nix-store", "--query", "--requisites", path, NULL};
	struct buf out = BUF_INIT(CLOSURE_LIST_MAX), err = BUF_INIT(65536);
	int ret = proc_run(argv, &out, &err);

	if (ret < 0)
		ret = error_set(
			"cannot list the closure of '%s': %s", path, buf_tail_lines(&err, 1));
	for (char *line = out.data; ret == 0 && line && *line;) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (*line)
			strvec_push(paths, line);
		line = nl ? nl + 1 : NULL;
	}
	buf_release(&out);
	buf_release(&err);
	return ret;
}

static int ssh_copy_(struct host_io *io, const char *path, struct ssh_copy_stats *st,
	ssh_copy_progress_fn progress, void *data)
{
	struct strvec paths = STRVEC_INIT;
	int ret;

	if (!io->conn)
		return error_set("'%s': not connected", io->host->name);
	if ((ret = closure_of(path, &paths)) == 0)
		ret = ssh_copy_closure(io->conn, (const char *const *)paths.v, paths.nr,
			io->cfg.substitute, st, progress, data);
	strvec_release(&paths);
	return ret;
}

static void ssh_disconnect_(struct host_io *io)
{
	ssh_conn_free(io->conn);
	io->conn = NULL;
}

static const struct host_io_ops ssh_ops = {
	.kind = "ssh",
	.connect = ssh_connect_,
	.exec = ssh_exec_,
	.probe = ssh_probe_,
	.copy = ssh_copy_,
	.disconnect = ssh_disconnect_,
};

/* ---- the machine constel runs on ---- */

static int local_connect(struct host_io *io)
{
	(void)io;
	return 0;
}

static int local_exec(
	struct host_io *io, const char *cmd, const struct host_exec *o, struct ssh_exec_result *res)
{
	const char *argv[] = {"sh", "-c", cmd, NULL};
	const char *in = o && o->input ? o->input : "";
	struct proc_cmd child = {.argv = argv,
		.in = in,
		.inlen = strlen(in),
		.out = &res->out,
		.err = &res->err,
		.timeout = o ? (int)o->timeout : 0,
		.any_status = true};
	int ret;

	ret = proc_cmd_run(&child);
	res->exit_status = child.exit_status;
	if (ret == 0 && res->out.truncated)
		ret = error_set(
			"'%s': answer too long (over %zu bytes)", io->host->name, res->out.max);
	return ret;
}

/* The same check as through a host's sshd: does localhost:port accept? */
static int local_probe(struct host_io *io, int port, int timeout_ms)
{
	struct sockaddr_in sa = {0};
	struct pollfd pfd;
	int fd, ret, err = 0;
	socklen_t len = sizeof(err);

	(void)io;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set("cannot make a socket: %s", strerror(errno));
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (ret < 0 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		ret = poll(&pfd, 1, timeout_ms);
		if (ret == 0) {
			close(fd);
			return error_setc(CONSTEL_ETIMEOUT, "localhost:%d: no answer", port);
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		ret = err ? -1 : 0;
	}
	close(fd);
	if (ret < 0)
		return error_setc(CONSTEL_ENOTFOUND, "localhost:%d refused the connection", port);
	return 0;
}

static int local_copy(struct host_io *io, const char *path, struct ssh_copy_stats *st,
	ssh_copy_progress_fn progress, void *data)
{
	(void)io;
	(void)path;
	if (st)
		memset(st, 0, sizeof(*st)); /* the local store has it: it built it */
	if (progress && st)
		progress(data, st);
	return 0;
}

static void local_disconnect(struct host_io *io)
{
	(void)io;
}

static const struct host_io_ops local_ops = {
	.kind = "local",
	.connect = local_connect,
	.exec = local_exec,
	.probe = local_probe,
	.copy = local_copy,
	.disconnect = local_disconnect,
};

/* ---- the table's users ---- */

void host_io_init(struct host_io *io, const struct inv_host *h, const struct host_io_config *cfg)
{
	memset(io, 0, sizeof(*io));
	io->ops = cfg->ops ? cfg->ops : h->local ? &local_ops : &ssh_ops;
	io->host = h;
	io->cfg = *cfg;
}

int host_io_open(struct host_io *io)
{
	int ret = io->ops->connect(io);

	io->open = ret == 0;
	return ret;
}

int host_io_exec(
	struct host_io *io, const char *cmd, const struct host_exec *o, struct ssh_exec_result *res)
{
	struct host_exec with_pass;
	char *as_root, *input = NULL;
	int ret;

	if (!o || !o->as_root || !io->host->become)
		return io->ops->exec(io, cmd, o, res);
	if (!o->become_pass) {
		/* `sudo -n -- .../bin/constel-host NAME ...`: docs/become.md */
		as_root = xasprintf("%s %s", io->host->become, cmd);
		ret = io->ops->exec(io, as_root, o, res);
		free(as_root);
		return ret;
	}
	/*
	 * --ask-become-pass: sudo reads the password (one line) from stdin,
	 * always (-k), and the command the rest of it
	 */
	as_root = xasprintf("sudo -k -S -p '' -- %s", cmd);
	input = xasprintf("%s\n%s", o->become_pass, o->input ? o->input : "");
	with_pass = *o;
	with_pass.input = input;
	ret = io->ops->exec(io, as_root, &with_pass, res);
	explicit_bzero(input, strlen(input));
	free(input);
	free(as_root);
	return ret;
}

int host_io_probe(struct host_io *io, int port, int timeout_ms)
{
	return io->ops->probe(io, port, timeout_ms);
}

int host_io_copy(struct host_io *io, const char *path, struct ssh_copy_stats *st,
	ssh_copy_progress_fn progress, void *data)
{
	return io->ops->copy(io, path, st, progress, data);
}

void host_io_close(struct host_io *io)
{
	io->ops->disconnect(io);
	io->open = false;
}

bool host_io_connected(const struct host_io *io)
{
	return io->open;
}
