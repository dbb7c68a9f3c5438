/*
 * transport/copy.c: closure copy, `nix copy --to ssh://` without the extra
 * connections: one round trip to learn what the host lacks, then one
 * `nix-store --serve --write` conversation per batch of paths, fed with
 * NARs read straight from the local store (transport/nar.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>

#include "common/proc.h"
#include "transport/internal.h"
#include "transport/ssh_private.h"
#include "transport/transport.h"

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

/* Nix's serve protocol (nix-store --serve), as far as a copy needs it. */
#define SERVE_MAGIC_1	       0x390c9debu
#define SERVE_MAGIC_2	       0x5452eecbu
#define SERVE_VERSION	       0x206u
#define SERVE_ADD_TO_STORE_NAR 9u
#define PATH_INFO_MAX	       (64u << 20)

static uint64_t get_u64(const char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

int transport__parse_serve_reply(const char *data, size_t len, size_t npaths, size_t *refused)
{
	/* magic, version, then a 1 for every path added */
	if (len != 8 * (2 + npaths) || get_u64(data) != SERVE_MAGIC_2)
		return -1;
	for (size_t i = 0; i < npaths; i++) {
		if (get_u64(data + 8 * (2 + i)) != 1) {
			*refused = i;
			return CONSTEL_ENOTFOUND;
		}
	}
	return 0;
}

/* What the receiving store needs to register a path: `nix path-info --json`. */
struct path_info {
	const char *path;
	json_t *info; /* borrowed from the parsed document */
};

struct feed {
	int fd; /* write end of the pipe the channel reads */
	const struct path_info *paths;
	size_t n;
	int ret;
	char error[512];
};

static int out_json_str(struct transport_out *o, json_t *v)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";

	return transport__out_str(o, s, strlen(s));
}

static int out_json_strings(struct transport_out *o, json_t *a)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;

	if (transport__out_u64(o, n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (out_json_str(o, json_array_get(a, i)) < 0)
			return -1;
	return 0;
}

/*
 * The client's side of the conversation, produced in a thread into the pipe
 * the channel sends from: greeting, then per path cmdAddToStoreNar, its
 * metadata and its NAR read straight from the store. Runs in parallel with
 * the channel's encryption, so reading and sending overlap.
 */
static void *feed_run(void *arg)
{
	struct feed *f = arg;
	struct transport_out o;
	sigset_t pipe_only;

	/* a host that gives up closes the pipe: EPIPE, not a signal */
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
	transport__out_init(&o, f->fd);
	f->ret = 0;
	if (transport__out_u64(&o, SERVE_MAGIC_1) < 0 || transport__out_u64(&o, SERVE_VERSION) < 0)
		f->ret = -1;
	for (size_t i = 0; i < f->n && !f->ret; i++) {
		json_t *info = f->paths[i].info;
		json_t *size = json_object_get(info, "narSize");
		uint64_t nar_size = json_is_integer(size) ? (uint64_t)json_integer_value(size) : 0;
		uint64_t before;

		if (transport__out_u64(&o, SERVE_ADD_TO_STORE_NAR) < 0 ||
			transport__out_str(&o, f->paths[i].path, strlen(f->paths[i].path)) < 0 ||
			out_json_str(&o, json_object_get(info, "deriver")) < 0 ||
			out_json_str(&o, json_object_get(info, "narHash")) < 0 ||
			out_json_strings(&o, json_object_get(info, "references")) < 0 ||
			transport__out_u64(&o, (uint64_t)json_integer_value(json_object_get(
						       info, "registrationTime"))) < 0 ||
			transport__out_u64(&o, nar_size) < 0 ||
			transport__out_u64(&o, json_is_true(json_object_get(info, "ultimate"))) <
				0 ||
			out_json_strings(&o, json_object_get(info, "signatures")) < 0 ||
			out_json_str(&o, json_object_get(info, "ca")) < 0) {
			f->ret = -1;
			break;
		}
		before = o.total;
		if (transport__nar_dump(&o, f->paths[i].path) < 0) {
			f->ret = -1;
			break;
		}
		if (o.total - before != nar_size) {
			f->ret = error_set("the NAR of '%s' has %llu bytes, its store says %llu",
				f->paths[i].path, (unsigned long long)(o.total - before),
				(unsigned long long)nar_size);
			break;
		}
	}
	if (!f->ret)
		f->ret = transport__out_flush(&o);
	if (f->ret)
		snprintf(f->error, sizeof(f->error), "%s", error_last());
	transport__out_release(&o);
	/* EOF ends the host's `nix-store --serve` */
	close(f->fd);
	f->fd = -1;
	return NULL;
}

static bool is_drv(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && !strcmp(path + n - 4, ".drv");
}

/*
 * Appends `nix path-info --json` of the batch's derivations (drvs true) or
 * of its other paths to the document. A .drv given to `nix path-info` means
 * its outputs unless --derivation, and --derivation turns any other path
 * into its deriver: so two calls.
 */
static int path_info_call(const char *const *batch, size_t nb, bool drvs, json_t *doc)
{
	struct strvec argv = STRVEC_INIT;
	struct buf sout = BUF_INIT(PATH_INFO_MAX), err = BUF_INIT(65536);
	json_error_t jerr;
	json_t *part = NULL;
	size_t n = 0;
	int ret = 0;

	proc_push_nix(&argv);
	strvec_push(&argv, "path-info");
	strvec_push(&argv, "--json");
	if (drvs)
		strvec_push(&argv, "--derivation");
	for (size_t i = 0; i < nb; i++)
		if (is_drv(batch[i]) == drvs) {
			strvec_push(&argv, batch[i]);
			n++;
		}
	if (!n)
		goto out;
	if (proc_run((const char *const *)argv.v, &sout, &err) < 0) {
		ret = error_set("local nix path-info failed: %.300s", buf_tail_lines(&err, 1));
		goto out;
	}
	part = json_loadb(sout.data ? sout.data : "", sout.len, 0, &jerr);
	if (!json_is_array(part)) {
		ret = error_set("cannot read nix path-info's answer: %s", jerr.text);
		goto out;
	}
	json_array_extend(doc, part);
out:
	json_decref(part);
	strvec_release(&argv);
	buf_release(&sout);
	buf_release(&err);
	return ret;
}

/* What the local store knows of each path of the batch, found by name. */
static int path_infos(const char *const *batch, size_t nb, json_t **doc, struct path_info *out)
{
	int ret;

	*doc = json_array();
	if ((ret = path_info_call(batch, nb, false, *doc)) < 0 ||
		(ret = path_info_call(batch, nb, true, *doc)) < 0)
		return ret;
	for (size_t i = 0; i < nb; i++) {
		out[i].path = batch[i];
		out[i].info = NULL;
		for (size_t j = 0; j < json_array_size(*doc) && !out[i].info; j++) {
			json_t *e = json_array_get(*doc, j);
			const char *p = json_string_value(json_object_get(e, "path"));

			if (p && !strcmp(p, batch[i]))
				out[i].info = e;
		}
		if (!out[i].info || !json_is_integer(json_object_get(out[i].info, "narSize")) ||
			!json_is_string(json_object_get(out[i].info, "narHash")))
			return error_set("'%s' is not a valid path of the local store", batch[i]);
	}
	return 0;
}

/*
 * Streams one batch into `nix-store --serve --write` on the host: one
 * cmdAddToStoreNar per path, its NAR read straight from the local store.
 * The host's store checks every NAR against its hash and answers 1 per path.
 */
static int send_batch(struct ssh_conn *c, const char *const *batch, size_t nb, struct copy_ctx *cc)
{
	struct ssh_exec_opts o = SSH_EXEC_OPTS_INIT;
	struct ssh_exec_result res;
	struct path_info *infos = xcalloc(nb + 1, sizeof(*infos));
	struct feed feed = {0};
	json_t *doc = NULL;
	int pfd[2] = {-1, -1}, ret;
	bool feeding = false;
	pthread_t thread;
	uint64_t sent = 0;

	ssh_exec_result_init(&res, 64 * 1024 + 8 * nb, 64 * 1024);
	if ((ret = path_infos(batch, nb, &doc, infos)) < 0) {
		ret = error_prefix(ret, "'%s'", c->label);
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = error_set("'%s': pipe: %s", c->label, strerror(errno));
		goto out;
	}
	/* bigger pipe, fewer wakeups; failure only costs speed */
	fcntl(pfd[0], F_SETPIPE_SZ, PIPE_SIZE);
	feed.fd = pfd[1];
	feed.paths = infos;
	feed.n = nb;
	if (pthread_create(&thread, NULL, feed_run, &feed)) {
		ret = error_set("'%s': cannot start the copy thread", c->label);
		goto out;
	}
	pfd[1] = -1; /* the feed closes it */
	feeding = true;
	o.stdin_fd = pfd[0];
	o.stdin_sent = &sent;
	o.on_progress = on_progress;
	o.data = cc;
	ret = ssh_conn_exec_opts(c, "nix-store --serve --write", &o, &res);
	cc->stats->round_trips++;
	cc->stats->bytes_sent = cc->base + sent;
	cc->base += sent;
	/* closing our end stops a feed the host no longer reads */
	close(pfd[0]);
	pfd[0] = -1;
	pthread_join(thread, NULL);
	feeding = false;
	if (ret < 0)
		goto out;
	if (feed.ret) {
		ret = error_set("'%s': %s", c->label, feed.error);
		goto out;
	}
	if (res.exit_status != 0) {
		ret = error_set("'%s': nix-store --serve failed (%s%s%d): %s", c->label,
			res.exit_signal ? "signal " : "exit ",
			res.exit_signal ? res.exit_signal : "",
			res.exit_signal ? 0 : res.exit_status, last_line(&res.err));
		goto out;
	}
	{
		size_t refused;
		int r = transport__parse_serve_reply(
			res.out.data ? res.out.data : "", res.out.len, nb, &refused);

		if (r == CONSTEL_ENOTFOUND) {
			ret = error_set(
				"'%s': the host did not add '%s'", c->label, batch[refused]);
			goto out;
		}
		if (r < 0) {
			ret = error_set(
				"'%s': unexpected answer from nix-store --serve (%zu bytes): %s",
				c->label, res.out.len, last_line(&res.err));
			goto out;
		}
	}
out:
	if (feeding) {
		close(pfd[0]);
		pfd[0] = -1;
		pthread_join(thread, NULL);
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	json_decref(doc);
	free(infos);
	ssh_exec_result_release(&res);
	return ret;
}

/*
 * The host fetches what it lacks from its own substituters, what it cannot
 * is left; then missing[] is what it still lacks.
 */
static int substitute_missing(struct ssh_conn *c, const char *const *paths, size_t n,
	bool *missing, struct ssh_copy_stats *stats)
{
	struct ssh_exec_result res;
	struct buf list = BUF_INIT(0);
	size_t before = 0, after = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		if (!missing[i])
			continue;
		buf_adds(&list, paths[i]);
		buf_adds(&list, "\n");
		before++;
	}
	if (!before)
		return 0;
	ssh_exec_result_init(&res, MAX_ANSWER, 64 * 1024);
	/* a path no substituter has is no error (its exit status is not): it is sent */
	ret = ssh_conn_exec(
		c, "exec xargs nix-store --realise --keep-going", list.data, list.len, &res);
	stats->round_trips++;
	ssh_exec_result_release(&res);
	ssh_exec_result_init(&res, MAX_ANSWER, 64 * 1024);
	if (ret == 0)
		ret = ssh_conn_exec(c, "exec xargs nix-store --check-validity --print-invalid",
			list.data, list.len, &res);
	stats->round_trips++;
	if (ret == 0 && res.exit_status != 0)
		ret = error_set("'%s': cannot ask which paths are still missing (exit %d): %s",
			c->label, res.exit_status, last_line(&res.err));
	if (ret == 0 && res.out.truncated)
		ret = error_set("'%s': the list of missing paths is too long", c->label);
	if (ret == 0) {
		memset(missing, 0, n * sizeof(*missing));
		ret = transport__parse_missing(
			paths, n, res.out.data ? res.out.data : "", res.out.len, missing);
		if (ret < 0)
			ret = error_prefix(ret, "'%s'", c->label);
	}
	for (size_t i = 0; ret == 0 && i < n; i++)
		after += missing[i];
	if (ret == 0)
		stats->paths_substituted = before > after ? before - after : 0;
	ssh_exec_result_release(&res);
	buf_release(&list);
	return ret;
}

int ssh_copy_closure(struct ssh_conn *c, const char *const *paths, size_t n, bool substitute,
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
		ret = error_prefix(ret, "'%s'", c->label);
		goto out;
	}
	if (substitute && (ret = substitute_missing(c, paths, n, missing, stats)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		stats->paths_missing += missing[i];
	if (progress)
		progress(data, stats); /* how many will go, before they go */

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
