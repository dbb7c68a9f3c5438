#include "common/proc.h"

#include "common/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void proc_push_nix(struct strvec *argv)
{
	static const char *const nix[] = {PROC_NIX};

	for (size_t i = 0; i < sizeof(nix) / sizeof(nix[0]); i++)
		strvec_push(argv, nix[i]);
}

char *proc_describe(const char *const *argv)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; argv[i]; i++)
		buf_printf(&b, "%s%s", i ? " " : "", argv[i]);
	return buf_detach(&b);
}

static int run_child(const char *const *argv, const void *in, size_t inlen, struct buf *out,
	struct buf *err, int timeout, int *exit_status)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t mask, defaults;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
	size_t insent = 0;
	pid_t pid = -1;
	int status = 0, ret = -1, rc;
	double start = now_seconds(), deadline = timeout > 0 ? start + timeout : 0;
	bool timed_out = false;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
		(in && pipe2(inp, O_CLOEXEC) < 0)) {
		ret = error_set("cannot create a pipe for '%s': %s", argv[0], strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	if (in)
		posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	/*
	 * The child starts with an empty signal mask and every signal at its
	 * default (git's start_command does the same): a worker thread has all
	 * signals blocked and SIGPIPE is ignored process-wide, and neither must
	 * reach nix or a local watchdog (its SIGTERM must work).
	 */
	posix_spawnattr_init(&sa);
	sigemptyset(&mask);
	sigfillset(&defaults);
	posix_spawnattr_setsigmask(&sa, &mask);
	posix_spawnattr_setsigdefault(&sa, &defaults);
	posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(&pid, argv[0], &fa, &sa, (char *const *)argv, environ);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (in) {
		close(inp[0]);
		inp[0] = -1;
		if (!inlen) {
			close(inp[1]);
			inp[1] = -1;
		}
	}
	if (rc) {
		pid = -1;
		ret = error_set("cannot run '%s': %s", argv[0], strerror(rc));
		goto out;
	}
	for (int open_fds = 2; open_fds > 0;) {
		struct pollfd pfd[3] = {
			{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}, {inp[1], POLLOUT, 0}};
		int wait_ms = -1;
		char chunk[65536];

		if (deadline) {
			double left = deadline - now_seconds();

			if (left <= 0) {
				timed_out = true;
				kill(pid, SIGKILL);
				break;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		rc = poll(pfd, 3, wait_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (inp[1] >= 0 && (pfd[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(inp[1], (const char *)in + insent, inlen - insent);

			if (w > 0)
				insent += (size_t)w;
			if ((w < 0 && errno != EINTR && errno != EAGAIN) || insent == inlen) {
				close(inp[1]);
				inp[1] = -1;
			}
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			struct buf *dst = i == 0 ? out : err;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n > 0) {
				if (dst)
					buf_add(dst, chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(i == 0 ? outp[0] : errp[0]);
				if (i == 0)
					outp[0] = -1;
				else
					errp[0] = -1;
				open_fds--;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (timed_out)
		ret = error_setc(CONSTEL_ETIMEOUT, "'%s' did not finish within %d seconds", argv[0],
			timeout);
	else if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || exit_status))
		ret = 0;
	else if (WIFEXITED(status))
		ret = error_set("'%s' exited with status %d", argv[0], WEXITSTATUS(status));
	else
		ret = error_set("'%s' was killed by signal %d", argv[0], WTERMSIG(status));
	if (exit_status)
		*exit_status = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (trace_enabled()) {
		char *line = proc_describe(argv), outcome[64];

		if (timed_out)
			snprintf(outcome, sizeof(outcome), "timed out");
		else if (WIFEXITED(status))
			snprintf(outcome, sizeof(outcome), "exit %d", WEXITSTATUS(status));
		else
			snprintf(outcome, sizeof(outcome), "signal %d", WTERMSIG(status));
		trace_command("local", line, now_seconds() - start, outcome);
		free(line);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (inp[i] >= 0)
			close(inp[i]);
	}
	return ret;
}

int proc_run_input(const char *const *argv, const void *in, size_t inlen, struct buf *out,
	struct buf *err, int timeout)
{
	return run_child(argv, in, inlen, out, err, timeout, NULL);
}

int proc_run_status(const char *const *argv, const void *in, size_t inlen, struct buf *out,
	struct buf *err, int timeout, int *exit_status)
{
	*exit_status = -1;
	return run_child(argv, in, inlen, out, err, timeout, exit_status);
}

int proc_run_timeout(const char *const *argv, struct buf *out, struct buf *err, int timeout)
{
	return proc_run_input(argv, NULL, 0, out, err, timeout);
}

int proc_run(const char *const *argv, struct buf *out, struct buf *err)
{
	return proc_run_input(argv, NULL, 0, out, err, 0);
}
