/*
 * transport/copy.c: closure copy, `nix copy --to ssh://` without the extra
 * connections: one round trip to learn what the host lacks, then one
 * `nix-store --export | nix-store --import` stream per batch of paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/internal.h"
#include "transport/ssh_private.h"
#include "transport/transport.h"

extern char **environ;

/* argv bytes per `nix-store --export`; far below ARG_MAX */
#define BATCH_ARG_BYTES (96 * 1024)
#define MAX_ANSWER	(16 * 1024 * 1024)
#define PIPE_SIZE	(1024 * 1024)

bool transport__valid_path(const char *p)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789+-._?=/";
	size_t len = strlen(p);

	/* absolute, no "..", only the characters Nix allows in store paths */
	return len > 1 && len < 4096 && p[0] == '/' && strspn(p, ok) == len && !strstr(p, "/..") &&
	       !strstr(p, "//");
}

static int cmp_index(const void *a, const void *b, void *ctx)
{
	const char *const *paths = ctx;

	return strcmp(paths[*(const size_t *)a], paths[*(const size_t *)b]);
}

struct key {
	const char *s;
	size_t len;
	const char *const *paths;
};

static int cmp_key(const void *k, const void *elem)
{
	const struct key *key = k;
	const char *p = key->paths[*(const size_t *)elem];
	int c = strncmp(key->s, p, key->len);

	return c ? c : (p[key->len] ? -1 : 0);
}

int transport__parse_missing(
	const char *const *paths, size_t n, const char *answer, size_t len, bool *missing)
{
	size_t *idx = xmalloc((n ? n : 1) * sizeof(*idx));
	size_t pos = 0, line = 0;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		missing[i] = false;
	}
	/* qsort_r: parallel workers copy at once, so no global comparator state */
	qsort_r(idx, n, sizeof(*idx), cmp_index, (void *)paths);
	while (pos < len) {
		const char *s = answer + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;
		struct key k = {s, l, paths};
		size_t *hit;

		line++;
		pos += l + (nl ? 1 : 0);
		if (!l)
			continue;
		hit = memchr(s, '\0', l) ? NULL : bsearch(&k, idx, n, sizeof(*idx), cmp_key);
		if (!hit) {
			ret = error_set("unexpected line %zu in the list of missing paths: '%.*s'",
				line, (int)(l > 200 ? 200 : l), s);
			goto out;
		}
		missing[*hit] = true;
	}
out:
	free(idx);
	return ret;
}

static char *read_tail(int fd, size_t max)
{
	struct buf b = BUF_INIT(0);
	char tmp[4096];
	off_t end = lseek(fd, 0, SEEK_END);
	ssize_t n;

	lseek(fd, end > (off_t)max ? end - (off_t)max : 0, SEEK_SET);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		buf_add(&b, tmp, (size_t)n);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n')
			b.data[i] = ' ';
	return buf_detach(&b);
}

/* Last line of a remote stderr, for a one-line message. */
static const char *last_line(struct buf *b)
{
	while (b->len && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	return b->len ? buf_tail_lines(b, 1) : "(no message)";
}

struct copy_ctx {
	struct ssh_copy_stats *stats;
	uint64_t base;
	ssh_copy_progress_fn progress;
	void *data;
};

static void on_progress(void *data, uint64_t sent)
{
	struct copy_ctx *cc = data;

	cc->stats->bytes_sent = cc->base + sent;
	if (cc->progress)
		cc->progress(cc->data, cc->stats);
}

/* Streams one batch: local `nix-store --export ...` into remote `nix-store --import`. */
static int send_batch(struct ssh_conn *c, const char *const *batch, size_t nb, struct copy_ctx *cc)
{
	struct ssh_exec_opts o = SSH_EXEC_OPTS_INIT;
	struct ssh_exec_result res;
	posix_spawn_file_actions_t fa;
	char **argv = xcalloc(nb + 3, sizeof(*argv));
	int pfd[2] = {-1, -1}, errfd = -1, status, ret = 0;
	uint64_t sent = 0;
	pid_t pid = -1;

	ssh_exec_result_init(&res, 64 * 1024, 64 * 1024);
	argv[0] = (char *)"nix-store";
	argv[1] = (char *)"--export";
	for (size_t i = 0; i < nb; i++)
		argv[i + 2] = (char *)batch[i];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = error_set("'%s': pipe: %s", c->label, strerror(errno));
		goto out;
	}
	/* bigger pipe, fewer wakeups; failure only costs speed */
	fcntl(pfd[0], F_SETPIPE_SZ, PIPE_SIZE);
	errfd = memfd_create("nix-store-export-stderr", MFD_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	if (errfd >= 0)
		posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	status = posix_spawnp(&pid, "nix-store", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	pfd[1] = -1;
	if (status != 0) {
		pid = -1;
		ret = error_set(
			"'%s': cannot run nix-store --export: %s", c->label, strerror(status));
		goto out;
	}
	o.stdin_fd = pfd[0];
	o.stdin_sent = &sent;
	o.on_progress = on_progress;
	o.data = cc;
	ret = ssh_conn_exec_opts(c, "nix-store --import", &o, &res);
	cc->stats->round_trips++;
	cc->stats->bytes_sent = cc->base + sent;
	cc->base += sent;
	/* closing our end stops an export the host no longer reads */
	close(pfd[0]);
	pfd[0] = -1;
	if (ret < 0)
		kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (ret < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char *tail = errfd >= 0 ? read_tail(errfd, 400) : xstrdup("");

		ret = error_set("'%s': local nix-store --export failed (%s %d): %s", c->label,
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
		free(tail);
		goto out;
	}
	if (res.exit_status != 0)
		ret = error_set("'%s': nix-store --import failed (%s%s%d): %s", c->label,
			res.exit_signal ? "signal " : "exit ",
			res.exit_signal ? res.exit_signal : "",
			res.exit_signal ? 0 : res.exit_status, last_line(&res.err));
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (errfd >= 0)
		close(errfd);
	ssh_exec_result_release(&res);
	free(argv);
	return ret;
}

int ssh_copy_closure(struct ssh_conn *c, const char *const *paths, size_t n,
	struct ssh_copy_stats *stats, ssh_copy_progress_fn progress, void *data)
{
	struct ssh_copy_stats local = {0};
	struct copy_ctx cc = {0};
	struct ssh_exec_result res;
	struct buf list = BUF_INIT(0);
	bool *missing = xcalloc(n ? n : 1, sizeof(*missing));
	const char **batch = xcalloc(n ? n : 1, sizeof(*batch));
	double start = now_seconds();
	int ret = 0;

	ssh_exec_result_init(&res, MAX_ANSWER, 64 * 1024);
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	stats->paths_total = n;
	cc.stats = stats;
	cc.progress = progress;
	cc.data = data;
	if (!n)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!transport__valid_path(paths[i])) {
			ret = error_set("'%s': refusing to copy '%s': not a store path", c->label,
				paths[i]);
			goto out;
		}
		buf_adds(&list, paths[i]);
		buf_adds(&list, "\n");
	}
	/* the one round trip: paths in on stdin, the invalid ones out */
	ret = ssh_conn_exec(c, "exec xargs nix-store --check-validity --print-invalid", list.data,
		list.len, &res);
	stats->round_trips++;
	if (ret < 0)
		goto out;
	if (res.exit_status != 0) {
		ret = error_set("'%s': cannot ask which paths are missing (exit %d): %s", c->label,
			res.exit_status, last_line(&res.err));
		goto out;
	}
	if (res.out.truncated) {
		ret = error_set("'%s': the list of missing paths is too long", c->label);
		goto out;
	}
	ret = transport__parse_missing(
		paths, n, res.out.data ? res.out.data : "", res.out.len, missing);
	if (ret < 0) {
		char *why = xstrdup(error_last());

		ret = error_set("'%s': %s", c->label, why);
		free(why);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		stats->paths_missing += missing[i];

	/* in the given (dependency) order, in batches that fit a command line */
	for (size_t i = 0; i < n && !ret;) {
		size_t nb = 0, bytes = 0;

		for (; i < n; i++) {
			size_t l = strlen(paths[i]) + 1;

			if (!missing[i])
				continue;
			if (nb && bytes + l > BATCH_ARG_BYTES)
				break;
			batch[nb++] = paths[i];
			bytes += l;
		}
		if (nb)
			ret = send_batch(c, batch, nb, &cc);
	}
out:
	stats->seconds = now_seconds() - start;
	if (progress && !ret)
		progress(data, stats);
	ssh_exec_result_release(&res);
	buf_release(&list);
	free(missing);
	free(batch);
	return ret;
}
