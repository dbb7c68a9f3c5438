/*
 * common/proc.c: the one child-process API. Each test runs a real child
 * and looks at what it saw (its environment, its directory, its signal
 * state, its input) or at how it ended.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"

/* awk holding a 64 MiB string, then sleeping `secs` (a child of its own: no shell between) */
static const char *const hog_argv[] = {"awk",
	"BEGIN { s = \"xxxxxxxxxxxxxxxx\"; for (i = 0; i < 22; i++) s = s s; "
	"system(\"sleep \" ARGV[1]) }",
	NULL, NULL};

/* Whether the output of `env` in `b` holds the line `line`. */
static bool has_line(const struct buf *b, const char *line)
{
	size_t n = strlen(line);
	const char *p = b->data;

	while (p && *p) {
		if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
			return true;
		if ((p = strchr(p, '\n')))
			p++;
	}
	return false;
}

static void test_proc_env_sets_and_unsets_variables_of_the_child(void **state)
{
	const char *argv[] = {"env", NULL};
	const char *env[] = {"CONSTEL_T_NEW=new", "CONSTEL_T_GONE", "CONSTEL_T_SET=first",
		"CONSTEL_T_SET=second", "CONSTEL_T_EMPTY=", NULL};
	struct buf out = BUF_INIT(1 << 20);
	struct proc_cmd cmd = {.argv = argv, .env = env, .out = &out};

	(void)state;
	setenv("CONSTEL_T_KEPT", "kept", 1);
	setenv("CONSTEL_T_GONE", "here", 1);
	setenv("CONSTEL_T_SET", "before", 1);
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_true(has_line(&out, "CONSTEL_T_KEPT=kept"));
	assert_true(has_line(&out, "CONSTEL_T_NEW=new"));
	assert_true(has_line(&out, "CONSTEL_T_SET=second"));
	assert_true(has_line(&out, "CONSTEL_T_EMPTY="));
	assert_null(strstr(out.data, "CONSTEL_T_GONE"));
	assert_null(strstr(out.data, "CONSTEL_T_SET=before"));
	assert_null(strstr(out.data, "CONSTEL_T_SET=first"));
	/* the caller's own environment is left as it was */
	assert_string_equal(getenv("CONSTEL_T_GONE"), "here");
	assert_null(getenv("CONSTEL_T_NEW"));

	/* clear_env: only what `env` sets, and the program still found in our PATH */
	buf_reset(&out);
	cmd.clear_env = true;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_string_equal(
		out.data, "CONSTEL_T_NEW=new\nCONSTEL_T_SET=second\nCONSTEL_T_EMPTY=\n");
	buf_release(&out);
	unsetenv("CONSTEL_T_KEPT");
	unsetenv("CONSTEL_T_GONE");
	unsetenv("CONSTEL_T_SET");
}

static void test_proc_dir_is_the_working_directory_of_the_child(void **state)
{
	char tmpl[] = "/tmp/constel-proc-XXXXXX", *dir, *real, *sub, *mine;
	const char *argv[] = {"pwd", "-P", NULL};
	const char *rel[] = {"./here.sh", NULL};
	struct buf out = BUF_INIT(4096);
	struct proc_cmd cmd = {.argv = argv, .out = &out};
	FILE *f;

	(void)state;
	assert_non_null(dir = mkdtemp(tmpl));
	assert_non_null(real = realpath(dir, NULL));
	mine = getcwd(NULL, 0);
	cmd.dir = dir;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(out.len, strlen(real) + 1);
	assert_memory_equal(out.data, real, strlen(real));
	/* a program given by a relative path is taken from there */
	sub = xasprintf("%s/here.sh", dir);
	assert_non_null(f = fopen(sub, "w"));
	fputs("#!/bin/sh\necho ran\n", f);
	fclose(f);
	assert_int_equal(chmod(sub, 0700), 0);
	buf_reset(&out);
	cmd.argv = rel;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_string_equal(out.data, "ran\n");
	/* ours did not move */
	free(real);
	assert_string_equal(real = getcwd(NULL, 0), mine);
	/* a missing directory: the program did not run, and the message says where */
	unlink(sub);
	rmdir(dir);
	assert_int_equal(proc_cmd_run(&cmd), -1);
	assert_int_equal(cmd.exit_status, -1);
	assert_non_null(strstr(error_last(), "cannot run './here.sh' in '/tmp/constel-proc-"));
	free(sub);
	free(real);
	free(mine);
	buf_release(&out);
}

static void test_proc_child_starts_with_no_blocked_or_ignored_signal(void **state)
{
	const char *argv[] = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status", NULL};
	struct buf out = BUF_INIT(4096);
	struct proc_cmd cmd = {.argv = argv, .out = &out};
	unsigned long long blk = ~0ULL, ign = ~0ULL;
	sigset_t term, old;

	(void)state;
	/* as a worker thread of constel is: SIGTERM blocked, SIGPIPE ignored */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	assert_int_equal(proc_cmd_run(&cmd), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(sscanf(out.data, "SigBlk:\t%llx\nSigIgn:\t%llx", &blk, &ign), 2);
	/* signals 1-31; glibc keeps its own real-time signals (32, 33) to itself */
	assert_int_equal(blk & 0x7fffffffULL, 0);
	assert_int_equal(ign & 0x7fffffffULL, 0);
	buf_release(&out);
}

static void test_proc_deadline_kills_the_child(void **state)
{
	const char *argv[] = {"sleep", "10", NULL};
	const char *closes[] = {"sh", "-c", "exec >&- 2>&-; sleep 10", NULL};
	struct proc_cmd cmd = {.argv = argv, .timeout = 1};
	double start = now_seconds();

	(void)state;
	assert_int_equal(proc_cmd_run(&cmd), CONSTEL_ETIMEOUT);
	assert_true(now_seconds() - start < 3);
	assert_int_equal(cmd.exit_status, -1);
	assert_string_equal(error_last(), "'sleep' did not finish within 1 seconds");
	/* closing its output does not take a child out of its deadline */
	cmd.argv = closes;
	start = now_seconds();
	assert_int_equal(proc_cmd_run(&cmd), CONSTEL_ETIMEOUT);
	assert_true(now_seconds() - start < 3);
	/* and one that closed it is still seen to end in time */
	closes[2] = "exec >&- 2>&-; sleep 0.2; exit 4";
	cmd.any_status = true;
	start = now_seconds();
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(cmd.exit_status, 4);
	assert_true(now_seconds() - start < 0.9);
}

static void test_proc_exit_status_is_reported_or_an_error(void **state)
{
	const char *argv[] = {"sh", "-c", "echo said; exit 3", NULL};
	struct buf out = BUF_INIT(64);
	struct proc_cmd cmd = {.argv = argv, .out = &out, .any_status = true};

	(void)state;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(cmd.exit_status, 3);
	assert_string_equal(out.data, "said\n");
	/* without any_status the same exit is an error naming the program */
	cmd.any_status = false;
	cmd.out = NULL;
	assert_int_equal(proc_cmd_run(&cmd), -1);
	assert_int_equal(cmd.exit_status, 3);
	assert_string_equal(error_last(), "'sh' exited with status 3");
	/* killed by a signal: no exit status, even with any_status */
	argv[2] = "kill -KILL $$";
	cmd.any_status = true;
	assert_int_equal(proc_cmd_run(&cmd), -1);
	assert_int_equal(cmd.exit_status, -1);
	assert_string_equal(error_last(), "'sh' was killed by signal 9");
	/* no such program */
	argv[0] = "constel-no-such-program";
	assert_int_equal(proc_cmd_run(&cmd), -1);
	assert_int_equal(cmd.exit_status, -1);
	assert_non_null(strstr(error_last(), "cannot run 'constel-no-such-program'"));
	buf_release(&out);
}

static void test_proc_input_is_fed_else_stdin_is_dev_null(void **state)
{
	const char *cat[] = {"cat", NULL};
	const char *fd0[] = {"readlink", "/proc/self/fd/0", NULL};
	/* more than a pipe holds, echoed back: fed as the child reads, while we read */
	size_t n = 1 << 20;
	char *in = xmalloc(n);
	struct buf out = BUF_INIT(2 << 20);
	struct proc_cmd cmd = {.argv = cat, .in = in, .inlen = n, .out = &out, .timeout = 10};
	int p[2], saved;

	(void)state;
	for (size_t i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	/* a write that blocks would hang past the child's deadline: end the test instead */
	alarm(20);
	assert_int_equal(proc_cmd_run(&cmd), 0);
	alarm(0);
	assert_int_equal(out.len, n);
	assert_memory_equal(out.data, in, n);
	/* empty input: the child reads its end at once */
	buf_reset(&out);
	cmd.inlen = 0;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(out.len, 0);
	/* no input: /dev/null, never the caller's stdin (here a pipe) */
	assert_int_equal(pipe(p), 0);
	assert_true((saved = dup(0)) >= 0);
	assert_int_equal(dup2(p[0], 0), 0);
	cmd.argv = fd0;
	cmd.in = NULL;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	close(p[0]);
	close(p[1]);
	assert_string_equal(out.data, "/dev/null\n");
	free(in);
	buf_release(&out);
}

static void test_proc_output_is_bounded_and_drained(void **state)
{
	/* 4 MiB of output: more than the pipe, so a child left unread would block */
	const char *argv[] = {"head", "-c", "4194304", "/dev/zero", NULL};
	struct buf out = BUF_INIT(1000), err = BUF_INIT(1000);
	struct proc_cmd cmd = {.argv = argv, .out = &out, .err = &err, .timeout = 10};

	(void)state;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_int_equal(out.len, 1000);
	assert_true(out.truncated);
	assert_int_equal(err.len, 0);
	buf_release(&out);
	buf_release(&err);
}

static void test_proc_rss_reads_what_a_process_touched(void **state)
{
	size_t before, after, n = 48u << 20;
	char *p;

	(void)state;
	assert_int_equal(proc_rss_kb(getpid(), &before), 0);
	p = malloc(n);
	assert_non_null(p);
	memset(p, 1, n);
	assert_int_equal(proc_rss_kb(getpid(), &after), 0);
	assert_true(after >= before + 40 * 1024);
	free(p);
	assert_int_equal(proc_rss_kb(999999999, &after), -1);
}

static void test_proc_memory_bound_kills_a_child_past_it(void **state)
{
	const char *argv[4];
	struct proc_cmd cmd = {.argv = argv, .max_rss_kb = 24 * 1024};
	double start = now_seconds();

	(void)state;
	memcpy(argv, hog_argv, sizeof(argv));
	argv[2] = "5";
	assert_int_equal(proc_cmd_run(&cmd), CONSTEL_ELIMIT);
	/* killed when seen, not when it ended by itself */
	assert_true(now_seconds() - start < 4);
	assert_true(cmd.peak_rss_kb > 24 * 1024);
	assert_non_null(strstr(error_last(), "more than its bound of 24 MB"));
}

static void test_proc_memory_peak_is_reported_within_bound(void **state)
{
	const char *argv[4];
	struct proc_cmd cmd = {.argv = argv, .max_rss_kb = 512 * 1024};

	(void)state;
	memcpy(argv, hog_argv, sizeof(argv));
	argv[2] = "0.1";
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_true(cmd.peak_rss_kb >= 64 * 1024);
	assert_true(cmd.peak_rss_kb < 512 * 1024);
	/* no bound: never killed, the peak still told */
	cmd.max_rss_kb = 0;
	assert_int_equal(proc_cmd_run(&cmd), 0);
	assert_true(cmd.peak_rss_kb >= 64 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_env_sets_and_unsets_variables_of_the_child),
		cmocka_unit_test(test_proc_dir_is_the_working_directory_of_the_child),
		cmocka_unit_test(test_proc_child_starts_with_no_blocked_or_ignored_signal),
		cmocka_unit_test(test_proc_deadline_kills_the_child),
		cmocka_unit_test(test_proc_exit_status_is_reported_or_an_error),
		cmocka_unit_test(test_proc_input_is_fed_else_stdin_is_dev_null),
		cmocka_unit_test(test_proc_output_is_bounded_and_drained),
		cmocka_unit_test(test_proc_rss_reads_what_a_process_touched),
		cmocka_unit_test(test_proc_memory_bound_kills_a_child_past_it),
		cmocka_unit_test(test_proc_memory_peak_is_reported_within_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
