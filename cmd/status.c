/*
 * constel status: per host, what runs there, which commit it came from and
 * how it drifted from what the repository's HEAD builds.
 *
 * Each selected host is asked once (one SSH session, one round trip: the
 * profile query and the host's deployment history), by a small pool of
 * threads that never print. The revision a host runs is the one of the
 * history record whose path is its current system; a current system no
 * record names was changed by hand.
 */
#include <assert.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/proc.h"
#include "deploy/build.h"
#include "deploy/host.h"
#include "deploy/provenance.h"
#include "deploy/record.h"
#include "transport/transport.h"

/* A host's answer (query and history) is read up to this much. */
#define ANSWER_MAX	  (4u << 20)
#define STATUS_OP_TIMEOUT 20
#define HISTORY_MARK	  "@@constel-history@@"

enum drift {
	DRIFT_IN_SYNC,
	DRIFT_BEHIND,
	DRIFT_DIRTY,
	DRIFT_BY_HAND,
	DRIFT_UNKNOWN,
	DRIFT_UNREACHABLE,
};

static const char *drift_name(enum drift d)
{
	switch (d) {
	case DRIFT_IN_SYNC:
		return "in-sync";
	case DRIFT_BEHIND:
		return "behind";
	case DRIFT_DIRTY:
		return "dirty";
	case DRIFT_BY_HAND:
		return "changed-by-hand";
	case DRIFT_UNKNOWN:
		return "unknown";
	case DRIFT_UNREACHABLE:
		return "unreachable";
	}
	return "?";
}

struct host_status_row {
	size_t host;
	bool reachable;
	char *current;
	long generation;
	char *switched;
	char *revision; /* of the record naming `current` */
	char *recorded; /* the time of that record */
	bool dirty;
	size_t nrecords;
	char *expected;
	char *eval_error;
	long behind; /* -1 unknown */
	enum drift drift;
	char *error;
};

struct status_ctx {
	const struct inventory *inv;
	const struct provenance *prov; /* repo_path NULL when not in git */
	struct build_set *builds;      /* NULL with --no-eval */
	const char *ssh_config;
	struct host_status_row *rows;
	size_t nrows;
	pthread_mutex_t lock;
	size_t next;
};

/* Reads the history lines: the last record naming `current`, and how many there are. */
static void read_history(struct host_status_row *row, const char *history)
{
	const char *p = history;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		json_error_t jerr;
		json_t *rec = json_loadb(p, len, 0, &jerr);

		if (json_is_object(rec)) {
			const char *path = json_string_value(json_object_get(rec, "path"));
			const char *result = json_string_value(json_object_get(rec, "result"));
			json_t *rev = json_object_get(rec, "revision");
			/* rolled-back and rollback records are history, not what was built */
			bool built = !result || !strcmp(result, "deployed");

			row->nrecords++;
			if (built && path && row->current && !strcmp(path, row->current)) {
				free(row->revision);
				row->revision = json_is_string(rev)
							? text_sanitize(json_string_value(rev))
							: NULL;
				row->dirty = json_is_true(json_object_get(rec, "dirty"));
				free(row->recorded);
				row->recorded = json_is_string(json_object_get(rec, "time"))
							? text_sanitize(json_string_value(
								  json_object_get(rec, "time")))
							: NULL;
				row->drift = DRIFT_BEHIND; /* recorded; refined by the caller */
			}
		}
		json_decref(rec);
		p = nl ? nl + 1 : NULL;
	}
}

/* One round trip: the query, then the history after a mark line. */
static int ask_host(struct status_ctx *s, const struct inv_host *h, char **answer)
{
	struct ssh_target t;
	struct ssh_conn *conn = NULL;
	struct ssh_exec_result res;
	char *cmd =
		xasprintf("%s; echo " HISTORY_MARK "; %s", host_cmd_query(), record_cmd_history());
	int ret;

	ssh_exec_result_init(&res, ANSWER_MAX, 65536);
	if (h->local) {
		const char *argv[] = {"sh", "-c", cmd, NULL};

		ret = proc_run_timeout(argv, &res.out, &res.err, STATUS_OP_TIMEOUT);
		/* the history's `cat` fails on a host never deployed: that is an answer */
		if (ret < 0 && res.out.len)
			ret = 0;
		goto done;
	}
	host_ssh_target(&t, h, s->ssh_config, s->inv->defaults.connect_timeout, STATUS_OP_TIMEOUT);
	if ((ret = ssh_conn_open(&conn, &t)) < 0)
		goto out;
	ret = ssh_conn_exec(conn, cmd, NULL, 0, &res);
done:
	if (ret == 0 && !strstr(res.out.data ? res.out.data : "", HISTORY_MARK))
		ret = error_set("'%s' gave no answer: %s", h->name, buf_tail_lines(&res.err, 1));
	if (ret == 0)
		*answer = buf_detach(&res.out);
out:
	ssh_exec_result_release(&res);
	ssh_conn_free(conn);
	free(cmd);
	return ret;
}

static void status_host(struct status_ctx *s, struct host_status_row *row)
{
	const struct inv_host *h = &s->inv->hosts[row->host];
	const struct provenance *p = s->prov;
	struct build_item *item = s->builds ? build_set_item(s->builds, row->host) : NULL;
	char *answer = NULL, *mark;
	size_t behind;

	row->behind = -1;
	row->generation = -1;
	/* evaluated before the pool started, every host in one nix eval */
	if (item && item->out_path)
		row->expected = xstrdup(item->out_path);
	else if (item && item->error)
		row->eval_error = xstrdup(item->error);
	if (ask_host(s, h, &answer) < 0) {
		row->error = xstrdup(error_last());
		row->drift = DRIFT_UNREACHABLE;
		return;
	}
	row->reachable = true;
	mark = strstr(answer, HISTORY_MARK);
	*mark = '\0';
	row->current = host_get(answer, "current");
	if (row->current && !host_is_store_path(row->current)) {
		free(row->current);
		row->current = NULL; /* not a store path: nothing to trust */
	}
	row->generation = host_get_long(answer, "gen", -1);
	{
		char *when = host_get(answer, "switched");

		row->switched = text_sanitize(when);
		free(when);
	}
	row->drift = DRIFT_BY_HAND;
	read_history(row, mark + strlen(HISTORY_MARK));
	free(answer);
	/*
	 * A date taken through the /run/current-system link is the store's
	 * canonical mtime (1970), not the switch: the record knows better.
	 */
	if (!row->switched || !*row->switched || !strncmp(row->switched, "1970-01-01", 10)) {
		free(row->switched);
		row->switched = row->recorded ? xstrdup(row->recorded) : NULL;
	}
	if (row->revision && p->repo_path && p->head &&
		provenance_behind(p->repo_path, p->head, row->revision, &behind) == 0)
		row->behind = (long)behind;
	if (row->current && row->expected && !strcmp(row->current, row->expected))
		row->drift = DRIFT_IN_SYNC; /* runs what HEAD builds, however it got there */
	else if (!row->current || !row->nrecords)
		row->drift = DRIFT_UNKNOWN;
	else if (row->drift == DRIFT_BEHIND && row->revision && p->head &&
		 !strcmp(row->revision, p->head))
		/* built from HEAD, but from a dirty tree: not what HEAD builds */
		row->drift = row->dirty ? DRIFT_DIRTY : DRIFT_IN_SYNC;
}

static void *status_worker(void *data)
{
	struct status_ctx *s = data;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&s->lock);
		i = s->next++;
		pthread_mutex_unlock(&s->lock);
		if (i >= s->nrows)
			return NULL;
		status_host(s, &s->rows[i]);
	}
}

static void run_pool(struct status_ctx *s, long parallel)
{
	size_t n = parallel > 0 ? (size_t)parallel : 1;
	pthread_t *threads;
	sigset_t block, old;
	size_t started = 0;

	if (n > s->nrows)
		n = s->nrows;
	threads = xcalloc(n + 1, sizeof(*threads));
	/* workers leave SIGINT to the main thread */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (size_t i = 0; i < n; i++)
		if (pthread_create(&threads[started], NULL, status_worker, s) == 0)
			started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!started)
		status_worker(s);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
}

/* Plans the evaluation of what HEAD builds; false (with a warning) when it cannot. */
static bool plan_eval(struct inventory *inv, const bool *selected, const struct provenance *p,
	struct provenance_source *src, struct build_set *builds)
{
	char *saved = inv->dir;
	int ret;

	if (p->repo_path && p->head &&
		provenance_source_init(src, p->repo_path, inv, selected, p->head) < 0) {
		fprintf(stderr, "constel: cannot evaluate HEAD: %s\n", error_last());
		return false;
	}
	if (src->inventory_dir)
		inv->dir = src->inventory_dir;
	/* "target" only skips the check that this machine can build every arch: we evaluate */
	ret = build_plan(builds, inv, selected, "target", src->flake_ref);
	inv->dir = saved;
	if (ret < 0) {
		fprintf(stderr, "constel: cannot evaluate the hosts' systems: %s\n", error_last());
		build_set_release(builds);
		return false;
	}
	return true;
}

/* The store path without /nix/store/ and with the hash cut, for the table. */
static const char *short_path(const char *path, char *buf, size_t n)
{
	const char *base;

	if (!path)
		return "-";
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strlen(base) > 33 && base[32] == '-')
		snprintf(buf, n, "%.7s…%s", base, base + 32);
	else
		snprintf(buf, n, "%s", base);
	return buf;
}

static void print_table(const struct status_ctx *s, const struct provenance *p)
{
	size_t w = 4;

	if (p->repo_path)
		printf("repository %s at %.8s%s\n", p->repo_path, p->head ? p->head : "(no commit)",
			p->dirty ? " (working tree has changes)" : "");
	for (size_t i = 0; i < s->nrows; i++) {
		size_t l = strlen(s->inv->hosts[s->rows[i].host].name);

		if (l > w)
			w = l;
	}
	printf("%-*s  %-15s  %4s  %-14s  %6s  %-20s  %s\n", (int)w, "HOST", "DRIFT", "GEN",
		"REVISION", "BEHIND", "SWITCHED", "CURRENT");
	for (size_t i = 0; i < s->nrows; i++) {
		const struct host_status_row *r = &s->rows[i];
		char rev[32], gen[24], behind[24], path[128];

		snprintf(rev, sizeof(rev), "%.8s%s", r->revision ? r->revision : "-",
			r->dirty ? "+dirty" : "");
		snprintf(gen, sizeof(gen), "%ld", r->generation);
		snprintf(behind, sizeof(behind), "%ld", r->behind);
		printf("%-*s  %-15s  %4s  %-14s  %6s  %-20s  %s\n", (int)w,
			s->inv->hosts[r->host].name, drift_name(r->drift),
			r->generation >= 0 ? gen : "-", rev, r->behind >= 0 ? behind : "-",
			r->switched ? r->switched : "-",
			short_path(r->current, path, sizeof(path)));
	}
}

static void print_json(const struct status_ctx *s)
{
	json_t *root = json_object(), *hosts = json_array();

	for (size_t i = 0; i < s->nrows; i++) {
		const struct host_status_row *r = &s->rows[i];
		json_t *o = json_object();

#define STR_OR_NULL(x) cmd_json_text(x)
		json_object_set_new(o, "name", json_string(s->inv->hosts[r->host].name));
		json_object_set_new(o, "reachable", json_boolean(r->reachable));
		json_object_set_new(o, "current", STR_OR_NULL(r->current));
		json_object_set_new(o, "generation",
			r->generation >= 0 ? json_integer(r->generation) : json_null());
		json_object_set_new(o, "revision", STR_OR_NULL(r->revision));
		json_object_set_new(o, "expected", STR_OR_NULL(r->expected));
		json_object_set_new(o, "drift", json_string(drift_name(r->drift)));
		json_object_set_new(
			o, "behind", r->behind >= 0 ? json_integer(r->behind) : json_null());
		json_object_set_new(o, "switched", STR_OR_NULL(r->switched));
#undef STR_OR_NULL
		json_array_append_new(hosts, o);
	}
	json_object_set_new(root, "hosts", hosts);
	json_dumpf(root, stdout, CMD_JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(root);
}

enum { STATUS_NO_EVAL = CMD_OPT_OWN };

static int status(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct strvec patterns = STRVEC_INIT;
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	bool *selected = NULL, json = g->json, eval = true, have_builds = false;
	struct provenance prov;
	struct provenance_source src;
	struct build_set builds;
	struct status_ctx s;
	long parallel = 0;
	int ret;

	memset(&prov, 0, sizeof(prov));
	memset(&src, 0, sizeof(src));
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.lock, NULL);
	(void)self;
	for (size_t i = 0; i < opts->nr; i++) {
		switch (opts->v[i].opt->id) {
		case STATUS_NO_EVAL:
			eval = false;
			break;
		case CMD_OPT_ON:
			cmd_split_list(&patterns, opts->v[i].arg);
			break;
		case CMD_OPT_PARALLEL:
			parallel = opts->v[i].num;
			break;
		default:
			assert(!"an option of the table without a case");
		}
	}
	for (size_t i = 0; i < opts->nargs; i++)
		strvec_push(&patterns, opts->args[i]);
	if ((ret = cmd_load_selection(g, &patterns, false, &inv, &graph, &selected)) != CMD_OK)
		goto out;
	if (provenance_open(&prov, inv->dir) < 0)
		fprintf(stderr, "constel: no revisions: %s\n", error_last());
	if (eval)
		have_builds = plan_eval(inv, selected, &prov, &src, &builds);
	if (have_builds) {
		struct buf log = BUF_INIT(1u << 20);

		build_eval(&builds, &log);
		buf_release(&log);
	}

	s.inv = inv;
	s.prov = &prov;
	s.builds = have_builds ? &builds : NULL;
	s.ssh_config = g->ssh_config ? g->ssh_config : inv->defaults.ssh_config;
	s.rows = xcalloc(inv->nhosts + 1, sizeof(*s.rows));
	for (size_t i = 0; i < inv->nhosts; i++)
		if (selected[i])
			s.rows[s.nrows++].host = i;
	run_pool(&s, parallel ? parallel : inv->defaults.parallel);

	ret = CMD_OK;
	for (size_t i = 0; i < s.nrows; i++) {
		const struct host_status_row *r = &s.rows[i];
		const char *name = inv->hosts[r->host].name;

		if (r->error)
			fprintf(stderr, "constel: %s: unreachable: %s\n", name, r->error);
		if (r->eval_error)
			fprintf(stderr, "constel: %s: cannot evaluate its system: %s\n", name,
				r->eval_error);
		if (!r->reachable || r->drift != DRIFT_IN_SYNC)
			ret = CMD_FAILED;
	}
	if (json)
		print_json(&s);
	else
		print_table(&s, &prov);
out:
	for (size_t i = 0; i < s.nrows; i++) {
		struct host_status_row *r = &s.rows[i];

		free(r->current);
		free(r->switched);
		free(r->revision);
		free(r->recorded);
		free(r->expected);
		free(r->eval_error);
		free(r->error);
	}
	free(s.rows);
	pthread_mutex_destroy(&s.lock);
	if (have_builds)
		build_set_release(&builds);
	provenance_source_release(&src);
	provenance_release(&prov);
	free(selected);
	graph_free(graph);
	inventory_free(inv);
	strvec_release(&patterns);
	return ret;
}

static const struct opt status_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_PARALLEL("hosts asked at once (default: the inventory's, else 10)"),
	{.name = "no-eval",
		.kind = OPT_FLAG,
		.id = STATUS_NO_EVAL,
		.help = "do not evaluate what the repository builds now (no drift against it)"},
	{NULL},
};

const struct cmd cmd_status_entry = {
	.name = "status",
	.opts = status_opts,
	.args = "[HOST...]",
	.summary = "per host: current system, generation, revision, drift",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = status,
};
