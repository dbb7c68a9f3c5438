/*
 * tests/tools/ssh-tool.c: drives transport/ from shell tests, before and
 * beside `constel exec`.
 *
 *   ssh-tool [options] exec HOST CMD     runs CMD, relays its output and exit status
 *   ssh-tool [options] probe HOST PORT   exit 0 if localhost:PORT accepts on HOST
 *   ssh-tool [options] copy HOST [PATH...]  copies a closure (paths in dependency
 *                                        order; read from stdin when none given)
 *
 * options: -F ssh_config, -a address, -u user, -p port, -t connect_timeout,
 *          -T op_timeout, -n N (exec: run N times on the one connection),
 *          -i FILE (exec: stdin from FILE), -s (print stats to stderr)
 * Exit: the remote status for exec; 0 success; 1 failure (message on
 * stderr); 3 not found (probe refused); 4 timeout; 2 usage.
 */
#include <fcntl.h>
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

int main(int argc, char **argv)
{
	struct ssh_target t = { 0 };
	struct ssh_conn *c = NULL;
	long v, repeat = 1;
	const char *input = NULL;
	bool stats = false;
	int opt, ret = 0, code = 0;
	double t0;

	while ((opt = getopt(argc, argv, "+F:a:u:p:t:T:n:i:s")) != -1) {
		switch (opt) {
		case 'F': t.ssh_config = optarg; break;
		case 'a': t.address = optarg; break;
		case 'u': t.user = optarg; break;
		case 'i': input = optarg; break;
		case 's': stats = true; break;
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
			code = fprintf(stderr, "ssh-tool: killed by SIG%s\n", res.exit_signal) ? 128 : 1;
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
			ret = ssh_copy_closure(c, (const char *const *)paths.v, paths.nr, &st,
					       on_copy, NULL);
		code = ret < 0 ? fail(ret) : 0;
		if (stats || !ret)
			fprintf(stderr, "copy: paths=%zu missing=%zu bytes=%llu seconds=%.3f "
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
