#include "common/proc.h"

#include "common/trace.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
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

int proc_rss_kb(pid_t pid, size_t *kb)
{
	char path[64], text[256], *end;
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	/* "SIZE RESIDENT SHARED ...", in pages */
	errno = 0;
	size = strtoull(text, &end, 10);
	if (errno || end == text || *end != ' ')
		return -1;
	resident = strtoull(end + 1, &end, 10);
	if (errno || (*end != ' ' && *end != '\n'))
		return -1;
	(void)size;
	*kb = (size_t)(resident * (unsigned long long)(page > 0 ? page : 4096) / 1024);
	return 0;
}

/* Whether one of the `n` entries of `list` names the variable of `entry` ("K=V" or "K"). */
static bool env_names(const char *const *list, size_t n, const char *entry)
{
	size_t len = strcspn(entry, "=");

	for (size_t i = 0; i < n; i++)
		if (!strncmp(list[i], entry, len) && (list[i][len] == '=' || !list[i][len]))
			return true;
	return false;
}

/*
 * The child's environment: constel's (unless clear_env) without the
 * variables `env` names, then the entries of `env` that set one, the last
 * of each name. NULL when that is `environ` as it is. The strings are
 * borrowed; the caller frees the array.
 */
static char **child_env(const struct proc_cmd *cmd)
{
	size_t n = 0, m = 0, k = 0;
	const char **envp;

	if (!cmd->env && !cmd->clear_env)
		return NULL;
	if (!cmd->clear_env)
		while (environ[n])
			n++;
	if (cmd->env)
		while (cmd->env[m]) {
			assert(cmd->env[m][0] && cmd->env[m][0] != '=');
			m++;
		}
	envp = xcalloc(n + m + 1, sizeof(*envp));
	for (size_t i = 0; i < n; i++)
		if (!env_names(cmd->env, m, environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < m; i++)
		if (strchr(cmd->env[i], '=') &&
			!env_names(cmd->env + i + 1, m - i - 1, cmd->env[i]))
			envp[k++] = cmd->env[i];
	return (char **)envp;
}

int proc_cmd_run(struct proc_cmd *cmd)
{
	const char *const *argv = cmd->argv;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t mask, defaults;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
	size_t insent = 0;
	pid_t pid = -1;
	int status = 0, ret = -1, rc, pidfd = -1;
	double start = now_seconds();
	double deadline = cmd->timeout > 0 ? start + cmd->timeout : 0;
	double next_sample = start;
	size_t max_kb = cmd->max_rss_kb, peak_kb = 0;
	char **envp = NULL;
	struct rusage ru;
	bool timed_out = false, over = false;

	assert(argv && argv[0]);
	cmd->exit_status = -1;
	cmd->peak_rss_kb = 0;
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
		(cmd->in && pipe2(inp, O_CLOEXEC) < 0)) {
		ret = error_set("cannot create a pipe for '%s': %s", argv[0], strerror(errno));
		goto out;
	}
	/*
	 * Our end of the input never blocks: a child busy writing output we
	 * have not read yet reads no input, and a blocking write would wait
	 * for it past the deadline (the child's end stays blocking).
	 */
	if (cmd->in && fcntl(inp[1], F_SETFL, O_NONBLOCK) < 0) {
		ret = error_set("cannot set up the input of '%s': %s", argv[0], strerror(errno));
		goto out;
	}
	envp = child_env(cmd);
	posix_spawn_file_actions_init(&fa);
	if (cmd->in)
		posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	if (cmd->dir)
		posix_spawn_file_actions_addchdir_np(&fa, cmd->dir);
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
	rc = posix_spawnp(&pid, argv[0], &fa, &sa, (char *const *)argv, envp ? envp : environ);
	posix_spawnattr_destroy(&sa);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (cmd->in) {
		close(inp[0]);
		inp[0] = -1;
		if (!cmd->inlen) {
			close(inp[1]);
			inp[1] = -1;
		}
	}
	if (rc) {
		pid = -1;
		if (cmd->dir)
			ret = error_set(
				"cannot run '%s' in '%s': %s", argv[0], cmd->dir, strerror(rc));
		else
			ret = error_set("cannot run '%s': %s", argv[0], strerror(rc));
		goto out;
	}
	for (int open_fds = 2;;) {
		struct pollfd pfd[4] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0},
			{inp[1], POLLOUT, 0}, {-1, POLLIN, 0}};
		int wait_ms = -1;
		char chunk[65536];
		double now;

		if (!open_fds) {
			/*
			 * It closed its output, and may run on: under a
			 * deadline or a bound it is watched to its end (its
			 * pidfd wakes the poll when it exits), else waited for.
			 */
			siginfo_t si = {0};

			if ((!deadline && !max_kb) ||
				(pidfd < 0 && (pidfd = pidfd_open(pid, 0)) < 0) ||
				waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
				si.si_pid)
				break;
			pfd[3].fd = pidfd;
		}
		now = now_seconds();
		if (max_kb && now >= next_sample) {
			size_t kb;

			if (proc_rss_kb(pid, &kb) == 0 && kb > peak_kb)
				peak_kb = kb;
			next_sample = now + PROC_SAMPLE_MS / 1000.0;
			if (peak_kb > max_kb) {
				over = true;
				kill(pid, SIGKILL);
				break;
			}
		}
		if (deadline) {
			double left = deadline - now;

			if (left <= 0) {
				timed_out = true;
				kill(pid, SIGKILL);
				break;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		if (max_kb) {
			int sample_ms = (int)((next_sample - now) * 1000) + 1;

			if (wait_ms < 0 || sample_ms < wait_ms)
				wait_ms = sample_ms;
		}
		rc = poll(pfd, 4, wait_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (inp[1] >= 0 && (pfd[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w =
				write(inp[1], (const char *)cmd->in + insent, cmd->inlen - insent);

			if (w > 0)
				insent += (size_t)w;
			if ((w < 0 && errno != EINTR && errno != EAGAIN) || insent == cmd->inlen) {
				close(inp[1]);
				inp[1] = -1;
			}
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			struct buf *dst = i == 0 ? cmd->out : cmd->err;

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
	memset(&ru, 0, sizeof(ru));
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	pid = -1;
	/* the exact peak: what a sample may have missed between two samples */
	if ((size_t)ru.ru_maxrss > peak_kb)
		peak_kb = (size_t)ru.ru_maxrss;
	cmd->peak_rss_kb = peak_kb;
	if (max_kb && peak_kb > max_kb)
		over = true;
	if (over)
		ret = error_setc(CONSTEL_ELIMIT, "'%s' used %zu MB, more than its bound of %zu MB",
			argv[0], (peak_kb + 1023) / 1024, max_kb / 1024);
	else if (timed_out)
		ret = error_setc(CONSTEL_ETIMEOUT, "'%s' did not finish within %d seconds", argv[0],
			cmd->timeout);
	else if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || cmd->any_status))
		ret = 0;
	else if (WIFEXITED(status))
		ret = error_set("'%s' exited with status %d", argv[0], WEXITSTATUS(status));
	else
		ret = error_set("'%s' was killed by signal %d", argv[0], WTERMSIG(status));
	cmd->exit_status = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (trace_enabled()) {
		char *line = proc_describe(argv), *where, outcome[64];

		if (over)
			snprintf(outcome, sizeof(outcome), "over its memory bound");
		else if (timed_out)
			snprintf(outcome, sizeof(outcome), "timed out");
		else if (WIFEXITED(status))
			snprintf(outcome, sizeof(outcome), "exit %d", WEXITSTATUS(status));
		else
			snprintf(outcome, sizeof(outcome), "signal %d", WTERMSIG(status));
		/* like a shell prompt: `local:DIR$ CMD` when it ran elsewhere */
		where = cmd->dir ? xasprintf("local:%s", cmd->dir) : xstrdup("local");
		trace_command(where, line, now_seconds() - start, outcome);
		free(where);
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
	if (pidfd >= 0)
		close(pidfd);
	free(envp);
	return ret;
}

int proc_run(const char *const *argv, struct buf *out, struct buf *err)
{
	struct proc_cmd cmd = {.argv = argv, .out = out, .err = err};

	return proc_cmd_run(&cmd);
}
