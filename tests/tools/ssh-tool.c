/*
 * tests/tools/ssh-tool.c: drives transport/ from shell tests, before and
 * beside `constel exec`.
 *
 *   ssh-tool [options] exec HOST CMD     runs CMD, relays its output and exit status
 *   ssh-tool [options] probe HOST PORT   exit 0 if localhost:PORT accepts on HOST
 *   ssh-tool [options] copy HOST [PATH...]  copies a closure (paths in dependency
 *                                        order; read from stdin when none given)
 *   ssh-tool [options] pexec CMD HOST... one thread per host, each with its own
 *                                        connection, -n runs each; prints
 *                                        "HOST STATUS FIRST-LINE-OF-OUTPUT"
 *
 * options: -F ssh_config, -a address, -u user, -p port, -t connect_timeout,
 *          -T op_timeout, -n N (exec: run N times on the one connection),
 *          -i FILE (exec: stdin from FILE), -s (print stats to stderr)
 * Exit: the remote status for exec; 0 success; 1 failure (message on
 * stderr); 3 not found (probe refused); 4 timeout; 2 usage.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "transport/transport.h"

static void usage(void)
{
	fprintf(stderr, "usage: ssh-tool [-F cfg] [-a addr] [-u user] [-p port] [-t s] [-T s] "
			"[-n N] [-i file] [-s] exec|probe|copy HOST [ARGS...]\n");
	exit(2);
}

static int fail(int code)
{
	fprintf(stderr, "ssh-tool: %s\n", error_last());
	if (code == CONSTEL_ETIMEOUT)
		return 4;
	if (code == CONSTEL_ENOTFOUND)
		return 3;
	return 1;
}

static int on_output(void *data, bool is_stderr, const char *chunk, size_t len)
{
	(void)data;
	fwrite(chunk, 1, len, is_stderr ? stderr : stdout);
	return 0;
}

static void on_copy(void *data, const struct ssh_copy_stats *s)
{
	(void)data;
	(void)s;
}

struct worker {
	struct ssh_target t;
	const char *cmd;
	long repeat;
	pthread_t thread;
	int ret;
	int status;
	char *first_line;
	char *error;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct ssh_exec_result res;
	struct ssh_conn *c = NULL;

	ssh_exec_result_init(&res, 64 * 1024, 64 * 1024);
	w->ret = ssh_conn_open(&c, &w->t);
	for (long i = 0; i < w->repeat && !w->ret; i++)
		w->ret = ssh_conn_exec(c, w->cmd, NULL, 0, &res);
	if (w->ret < 0) {
		w->error = xstrdup(error_last());
	} else {
		w->status = res.exit_status;
		w->first_line = xstrndup(res.out.data ? res.out.data : "",
			res.out.data ? strcspn(res.out.data, "\n") : 0);
	}
	ssh_exec_result_release(&res);
	ssh_conn_free(c);
	return NULL;
}

/* Each host in its own thread with its own session, at the same time. */
static int pexec(const struct ssh_target *base, const char *cmd, char **hosts, int n, long repeat)
{
	struct worker *w = xcalloc((size_t)n, sizeof(*w));
	int code = 0;

	for (int i = 0; i < n; i++) {
		w[i].t = *base;
		w[i].t.name = hosts[i];
		w[i].cmd = cmd;
		w[i].repeat = repeat;
		if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0)
			return 1;
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].ret < 0) {
			printf("%s error %s\n", hosts[i], w[i].error);
			code = 1;
		} else {
			printf("%s %d %s\n", hosts[i], w[i].status, w[i].first_line);
		}
		free(w[i].error);
		free(w[i].first_line);
	}
	free(w);
	fprintf(stderr, "ssh-tool: connections=%u\n", ssh_conn_count());
	return code;
}

int main(int argc, char **argv)
{
	struct ssh_target t = {0};
	struct ssh_conn *c = NULL;
	long v, repeat = 1;
	const char *input = NULL;
	bool stats = false;
	int opt, ret = 0, code = 0;
	double t0;

	while ((opt = getopt(argc, argv, "+F:a:u:p:t:T:n:i:s")) != -1) {
		switch (opt) {
		case 'F':
			t.ssh_config = optarg;
			break;
		case 'a':
			t.address = optarg;
			break;
		case 'u':
			t.user = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case 's':
			stats = true;
			break;
		case 'p':
		case 't':
		case 'T':
		case 'n':
			if (parse_long(optarg, 0, 100000, &v) < 0)
				usage();
			if (opt == 'p')
				t.port = (int)v;
			else if (opt == 't')
				t.connect_timeout = (int)v;
			else if (opt == 'T')
				t.op_timeout = (int)v;
			else
				repeat = v;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	if (!strcmp(argv[optind], "pexec")) {
		if (argc - optind < 3)
			usage();
		return pexec(&t, argv[optind + 1], argv + optind + 2, argc - optind - 2, repeat);
	}
	t.name = argv[optind + 1];
	t0 = now_seconds();
	ret = ssh_conn_open(&c, &t);
	if (ret < 0) {
		code = fail(ret);
		if (stats)
			fprintf(stderr, "ssh-tool: failed after %.2fs\n", now_seconds() - t0);
		return code;
	}
	if (!strcmp(argv[optind], "exec") && argc - optind == 3) {
		struct ssh_exec_opts o = SSH_EXEC_OPTS_INIT;
		struct ssh_exec_result res;
		int fd = -1;

		ssh_exec_result_init(&res, 1024 * 1024, 1024 * 1024);
		o.on_output = on_output;
		for (long i = 0; i < repeat && !ret; i++) {
			if (input && (fd = open(input, O_RDONLY)) < 0) {
				perror(input);
				return 1;
			}
			o.stdin_fd = fd;
			ret = ssh_conn_exec_opts(c, argv[optind + 2], &o, &res);
			if (fd >= 0)
				close(fd);
		}
		if (ret < 0)
			code = fail(ret);
		else if (res.exit_signal)
			code = fprintf(stderr, "ssh-tool: killed by SIG%s\n", res.exit_signal) ? 128
											       : 1;
		else
			code = res.exit_status;
		if (stats)
			fprintf(stderr, "ssh-tool: out=%zu err=%zu truncated=%d connections=%u\n",
				res.out.len, res.err.len, res.out.truncated || res.err.truncated,
				ssh_conn_count());
		ssh_exec_result_release(&res);
	} else if (!strcmp(argv[optind], "probe") && argc - optind >= 3) {
		long port, ms = 3000;

		if (parse_long(argv[optind + 2], 1, 65535, &port) < 0 ||
			(argc - optind > 3 && parse_long(argv[optind + 3], 1, 600000, &ms) < 0))
			usage();
		ret = ssh_conn_probe(c, (int)port, (int)ms);
		code = ret < 0 ? fail(ret) : 0;
	} else if (!strcmp(argv[optind], "copy")) {
		struct strvec paths = STRVEC_INIT;
		struct ssh_copy_stats st;
		char line[4096];

		for (int i = optind + 2; i < argc; i++)
			strvec_push(&paths, argv[i]);
		if (optind + 2 >= argc) {
			while (fgets(line, sizeof(line), stdin)) {
				line[strcspn(line, "\n")] = '\0';
				if (*line)
					strvec_push(&paths, line);
			}
		}
		for (long i = 0; i < repeat && !ret; i++)
			ret = ssh_copy_closure(c, (const char *const *)paths.v, paths.nr,
				getenv("SSH_TOOL_SUBSTITUTE") != NULL, &st, on_copy, NULL);
		code = ret < 0 ? fail(ret) : 0;
		if (stats || !ret)
			fprintf(stderr,
				"copy: paths=%zu missing=%zu bytes=%llu seconds=%.3f "
				"round_trips=%u connections=%u\n",
				st.paths_total, st.paths_missing, (unsigned long long)st.bytes_sent,
				st.seconds, st.round_trips, ssh_conn_count());
		strvec_release(&paths);
	} else {
		usage();
	}
	ssh_conn_free(c);
	return code;
}
