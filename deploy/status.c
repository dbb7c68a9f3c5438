/*
 * deploy/status.c: what `constel status` finds out. See deploy/status.h.
 */
#include "deploy/status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "deploy/host.h"
#include "deploy/host_io.h"
#include "deploy/record.h"
#include "transport/transport.h"

/* A host's answer (query and history) is read up to this much. */
#define ANSWER_MAX	  (4u << 20)
#define STATUS_OP_TIMEOUT 20
#define HISTORY_MARK	  "@@constel-history@@"

struct status_ctx {
	const struct inventory *inv;
	const struct provenance *prov; /* repo_path NULL when not in git */
	struct build_set *builds;      /* NULL with --no-eval */
	const char *ssh_config;
	struct status_row *rows;
	size_t nrows;
};

const char *status_drift_name(enum status_drift d)
{
	switch (d) {
	case STATUS_IN_SYNC:
		return "in-sync";
	case STATUS_BEHIND:
		return "behind";
	case STATUS_DIRTY:
		return "dirty";
	case STATUS_BY_HAND:
		return "changed-by-hand";
	case STATUS_UNKNOWN:
		return "unknown";
	case STATUS_UNREACHABLE:
		return "unreachable";
	}
	return "?";
}

enum status_drift status_drift_of(const struct status_row *r, const char *head)
{
	if (!r->reachable)
		return STATUS_UNREACHABLE;
	if (r->current && r->expected && !strcmp(r->current, r->expected))
		return STATUS_IN_SYNC; /* runs what HEAD builds, however it got there */
	if (!r->current || !r->nrecords)
		return STATUS_UNKNOWN;
	if (!r->matched)
		return STATUS_BY_HAND;
	if (r->revision && head && !strcmp(r->revision, head))
		/* built from HEAD, but from a dirty tree: not what HEAD builds */
		return r->dirty ? STATUS_DIRTY : STATUS_IN_SYNC;
	return STATUS_BEHIND;
}

/* Reads the history lines: the last record naming `current`, and how many there are. */
void status__read_history(struct status_row *row, const char *history)
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
				row->matched = true;
			}
		}
		json_decref(rec);
		p = nl ? nl + 1 : NULL;
	}
}

/* One round trip: the query, then the history after a mark line. */
static int ask_host(struct status_ctx *s, const struct inv_host *h, char **answer)
{
	struct host_io_config cfg = {.ssh_config = s->ssh_config,
		.connect_timeout = s->inv->defaults.connect_timeout,
		.op_timeout = STATUS_OP_TIMEOUT};
	struct host_exec ex = {.timeout = STATUS_OP_TIMEOUT};
	struct host_io io;
	struct ssh_exec_result res;
	char *cmd =
		xasprintf("%s; echo " HISTORY_MARK "; %s", host_cmd_query(), record_cmd_history());
	int ret;

	ssh_exec_result_init(&res, ANSWER_MAX, 65536);
	host_io_init(&io, h, &cfg);
	if ((ret = host_io_open(&io)) == 0)
		ret = host_io_exec(&io, cmd, &ex, &res);
	if (ret == 0 && !strstr(res.out.data ? res.out.data : "", HISTORY_MARK))
		ret = error_set("'%s' gave no answer: %s", h->name, buf_tail_lines(&res.err, 1));
	if (ret == 0)
		*answer = buf_detach(&res.out);
	ssh_exec_result_release(&res);
	host_io_close(&io);
	free(cmd);
	return ret;
}

static void status_host(struct status_ctx *s, struct status_row *row)
{
	const struct inv_host *h = &s->inv->hosts[row->host];
	const struct provenance *p = s->prov;
	struct build_item *item = s->builds ? build_set_item(s->builds, row->host) : NULL;
	char *answer = NULL, *mark;
	size_t behind;

	row->behind = -1;
	row->generation = -1;
	/* evaluated before the pool started (deploy/eval.h) */
	if (item && item->out_path)
		row->expected = xstrdup(item->out_path);
	else if (item && item->error)
		row->eval_error = xstrdup(item->error);
	if (ask_host(s, h, &answer) < 0) {
		row->error = xstrdup(error_last());
		row->drift = STATUS_UNREACHABLE;
		return;
	}
	row->reachable = true;
	mark = strstr(answer, HISTORY_MARK);
	*mark = '\0';
	row->locked = host_get_long(answer, "locked", 0) == 1;
	{
		char *run = host_get(answer, "interrupted");

		row->interrupted = text_sanitize(run);
		free(run);
	}
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
	status__read_history(row, mark + strlen(HISTORY_MARK));
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
	row->drift = status_drift_of(row, p->head);
}

static void status_run(void *data, size_t i)
{
	struct status_ctx *s = data;

	status_host(s, &s->rows[i]);
}

static const struct pool_ops status_pool = {.run = status_run};

/* Plans the evaluation of what HEAD builds; false (with a warning) when it cannot. */
static bool plan_eval(const struct status_opts *o, struct provenance_source *src,
	struct build_set *builds, struct strvec *warnings)
{
	struct inventory *inv = o->inv;
	const bool *selected = o->selected;
	const struct provenance *p = o->prov;
	char *saved = inv->dir;
	int ret;

	if (p->repo_path && p->head &&
		provenance_source_init(src, p->repo_path, inv, selected, p->head) < 0) {
		strvec_pushf(warnings, "cannot evaluate HEAD: %s", error_last());
		return false;
	}
	if (src->inventory_dir)
		inv->dir = src->inventory_dir;
	/* "target" only skips the check that this machine can build every arch: we evaluate */
	ret = build_plan(builds, inv, selected, "target", src->flake_ref, 0);
	inv->dir = saved;
	if (ret < 0) {
		strvec_pushf(warnings, "cannot evaluate the hosts' systems: %s", error_last());
		build_set_release(builds);
		return false;
	}
	builds->eval = o->how;
	/* the flakes are pinned to HEAD: what the working tree holds does not matter */
	builds->eval.repo = src->flake_ref ? p->repo_path : NULL;
	builds->eval.commit = src->flake_ref ? p->head : NULL;
	return true;
}

int status_collect(const struct status_opts *o, struct status_report *out)
{
	struct provenance_source src;
	struct build_set builds;
	struct status_ctx s;
	bool have_builds = false;

	memset(out, 0, sizeof(*out));
	memset(&src, 0, sizeof(src));
	memset(&s, 0, sizeof(s));
	strvec_init(&out->warnings);
	if (o->eval)
		have_builds = plan_eval(o, &src, &builds, &out->warnings);
	if (have_builds) {
		struct buf log = BUF_INIT(1u << 20);

		build_eval(&builds, &log);
		buf_release(&log);
	}
	s.inv = o->inv;
	s.prov = o->prov;
	s.builds = have_builds ? &builds : NULL;
	s.ssh_config = o->ssh_config;
	s.rows = xcalloc(o->inv->nhosts + 1, sizeof(*s.rows));
	for (size_t i = 0; i < o->inv->nhosts; i++)
		if (o->selected[i])
			s.rows[s.nrows++].host = i;
	pool_run_tasks(&status_pool, &s, s.nrows, (size_t)(o->parallel > 0 ? o->parallel : 1));
	out->rows = s.rows;
	out->nrows = s.nrows;
	if (have_builds)
		build_set_release(&builds);
	provenance_source_release(&src);
	return 0;
}

void status_report_release(struct status_report *r)
{
	for (size_t i = 0; i < r->nrows; i++) {
		struct status_row *row = &r->rows[i];

		free(row->current);
		free(row->switched);
		free(row->revision);
		free(row->recorded);
		free(row->expected);
		free(row->eval_error);
		free(row->error);
		free(row->interrupted);
	}
	free(r->rows);
	strvec_release(&r->warnings);
	memset(r, 0, sizeof(*r));
}
