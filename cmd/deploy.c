/* constel deploy / build: build the selected hosts, then (deploy) ship and activate them. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/run.h"
#include "deploy/build.h"
#include "deploy/eval.h"
#include "deploy/provenance.h"

/* What deploy and build share: inventory, graph, selection, builds. */
struct prepared {
	struct inventory *inv;
	struct graph *graph;
	bool *selected;
	struct build_set builds;
	bool have_builds;
	char *log_dir;
	struct provenance prov;	      /* the configuration repository */
	bool have_repo;		      /* the inventory is in a git working tree */
	struct provenance_source src; /* --rev: what to build from */
	char *sha;		      /* the commit built, NULL when unknown */
	bool dirty;		      /* built from a working tree with changes */
};

static void prepared_release(struct prepared *p)
{
	if (p->have_builds)
		build_set_release(&p->builds);
	graph_free(p->graph);
	inventory_free(p->inv);
	free(p->selected);
	free(p->log_dir);
	provenance_source_release(&p->src);
	provenance_release(&p->prov);
	free(p->sha);
}

static int write_file(const char *path, const struct buf *b)
{
	FILE *f = file_open_private(path, false);

	if (!f)
		return -1;
	if (b->len)
		fwrite(b->data, 1, b->len, f);
	return fclose(f);
}

/*
 * Which commit is built: --rev's exactly, else HEAD and whether the working
 * tree has changes, which a deploy refuses unless --allow-dirty.
 */
static int prepare_provenance(struct run_args *a, struct prepared *p, bool refuse_dirty)
{
	int err = provenance_open(&p->prov, p->inv->dir);

	if (err < 0 && err != CONSTEL_ENOTFOUND)
		return cmd_error("%s", error_last());
	p->have_repo = err == 0;
	if (a->rev) {
		if (!p->have_repo)
			return cmd_error(
				"--rev needs the inventory in a git repository: %s", error_last());
		if (provenance_resolve_rev(p->prov.repo_path, a->rev, &p->sha) < 0 ||
			provenance_source_init(
				&p->src, p->prov.repo_path, p->inv, p->selected, p->sha) < 0)
			return cmd_error("%s", error_last());
		fprintf(stderr, "building %s at %.12s\n", a->rev, p->sha);
		return CMD_OK;
	}
	if (!p->have_repo)
		return CMD_OK;
	if (p->prov.dirty && refuse_dirty && !a->allow_dirty) {
		cmd_error("the working tree of '%s' has uncommitted changes; commit them, deploy a "
			  "commit with --rev REF, or pass --allow-dirty:",
			p->prov.repo_path);
		for (size_t i = 0; i < p->prov.changed.nr; i++)
			fprintf(stderr, "  %s\n", p->prov.changed.v[i]);
		return CMD_USAGE;
	}
	p->sha = p->prov.head ? xstrdup(p->prov.head) : NULL;
	p->dirty = p->prov.dirty;
	return CMD_OK;
}

/*
 * How the hosts are evaluated: the options, and the commit the flakes are
 * at when that is known for sure (an exact --rev, or a clean working tree),
 * so that an unchanged commit is not evaluated again.
 */
static void eval_options(
	struct build_set_eval *e, const struct run_args *a, const struct prepared *p)
{
	e->jobs = a->eval.jobs > 0 ? (size_t)a->eval.jobs : 0;
	e->max_memory_mb = a->eval.max_memory_mb > 0 ? (size_t)a->eval.max_memory_mb : 0;
	e->no_cache = a->eval.no_cache;
	if (p->have_repo && p->sha && (a->rev || !p->dirty)) {
		e->repo = p->prov.repo_path;
		e->commit = p->sha;
	}
}

/* Evaluates every host, showing how far it got on a terminal. */
static void evaluate(struct prepared *p, struct buf *log)
{
	struct eval *e;
	size_t done = 0, total = 0, cached = 0, failed = 0;
	double start = now_seconds();
	bool live = isatty(2);

	eval_start(&e, &p->builds);
	while (eval_wait(e, 250, &done, &total))
		if (live)
			fprintf(stderr, "\revaluating %zu/%zu", done, total);
	if (live && total)
		fprintf(stderr, "\r\033[K");
	eval_finish(e, log);
	for (size_t i = 0; i < p->builds.nitems; i++) {
		cached += p->builds.items[i].cached;
		failed += p->builds.items[i].error != NULL;
	}
	if (total)
		fprintf(stderr, "evaluated %zu host%s in %.1fs: %zu from the cache, %zu failed\n",
			total, total == 1 ? "" : "s", now_seconds() - start, cached, failed);
}

/* Loads, selects and plans the builds. Returns CMD_OK or the exit status to return. */
static int prepare(
	const struct global_opts *g, struct run_args *a, struct prepared *p, bool refuse_dirty)
{
	char *inv_dir;
	struct buf where = BUF_INIT(0);
	int ret;

	memset(p, 0, sizeof(*p));
	ret = cmd_load_selection(g, &a->patterns, a->with_deps, &p->inv, &p->graph, &p->selected);
	if (ret != CMD_OK)
		return ret;
	if ((ret = prepare_provenance(a, p, refuse_dirty)) != CMD_OK)
		return ret;
	/* with --rev, `file:` paths resolve inside the exported commit */
	inv_dir = p->inv->dir;
	if (p->src.inventory_dir)
		p->inv->dir = p->src.inventory_dir;
	ret = build_plan(&p->builds, p->inv, p->selected, a->build_on, p->src.flake_ref,
		a->allow_emulation ? BUILD_ALLOW_EMULATION : 0);
	p->inv->dir = inv_dir;
	if (ret < 0)
		return cmd_error("%s", error_last());
	p->have_builds = true;
	p->builds.ssh_config = g->ssh_config ? g->ssh_config : p->inv->defaults.ssh_config;
	eval_options(&p->builds.eval, a, p);
	if (!(p->log_dir = run_log_dir(a->log_dir)))
		return cmd_error("%s", error_last());
	build_describe(&p->builds, p->inv, &where);
	fprintf(stderr, "%s", where.data ? where.data : "");
	buf_release(&where);
	return CMD_OK;
}

/* The run's build.log: what the evaluations and the builds said. */
static char *write_build_log(const struct prepared *p, const struct buf *log)
{
	char *path = xasprintf("%s/build.log", p->log_dir);

	write_file(path, log);
	return path;
}

/* Evaluates and builds every host before anything else (build, deploy --dry-run). */
static void build_all(struct prepared *p)
{
	struct buf log = BUF_INIT(64u << 20);
	char *log_path;
	size_t failed;

	evaluate(p, &log);
	fprintf(stderr, "building %zu host%s...\n", p->builds.nitems,
		p->builds.nitems == 1 ? "" : "s");
	failed = build_run(&p->builds, p->inv, &log);
	log_path = write_build_log(p, &log);
	for (size_t i = 0; i < p->builds.nitems; i++) {
		const struct build_item *it = &p->builds.items[i];
		const char *name = p->inv->hosts[it->host].name;

		if (it->error)
			fprintf(stderr, "  %s: %s\n", name, it->error);
		else if (it->out_path)
			fprintf(stderr, "  %s: %s\n", name, it->out_path);
	}
	if (failed)
		fprintf(stderr, "constel: %zu host%s did not build; nix's output is in %s\n",
			failed, failed == 1 ? "" : "s", log_path);
	buf_release(&log);
	free(log_path);
}

static int deploy(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct run_args a;
	struct prepared p;
	struct runner_opts o;
	struct runner *r;
	struct provenance_notes notes;
	struct buf log = BUF_INIT(64u << 20);
	bool have_notes = false;
	int ret;

	(void)self;
	run_args_init(&a, opts);
	if (a.reboot && a.goal && strcmp(a.goal, "boot")) {
		cmd_error("--reboot reboots into the generation set for boot: it goes with "
			  "--goal boot, not --goal %s",
			a.goal);
		ret = cmd_usage(self);
		run_args_release(&a);
		return ret;
	}
	if (a.reboot)
		a.goal = "boot";
	ret = prepare(g, &a, &p, !a.dry_run);
	if (ret != CMD_OK)
		goto out;
	if (a.dry_run) {
		build_all(&p);
		size_t failed = 0;

		for (size_t i = 0; i < p.builds.nitems; i++)
			failed += p.builds.items[i].error != NULL;
		fprintf(stderr, "dry run: built %zu host%s, touched none\n",
			p.builds.nitems - failed, p.builds.nitems - failed == 1 ? "" : "s");
		ret = failed ? CMD_FAILED : CMD_OK;
		goto out;
	}
	run_runner_opts(&o, p.inv, &a, g, p.log_dir);
	o.record.revision = p.sha;
	o.record.dirty = p.dirty;
	o.record.deployer = p.prov.deployer;
	if (p.have_repo && p.sha) {
		provenance_notes_init(&notes, p.prov.repo_path, p.sha, p.dirty, p.inv);
		have_notes = true;
		o.on_result = provenance_on_result;
		o.data = &notes;
	}
	/* evaluated and built as it goes: a host starts once its system is built */
	o.stream = true;
	o.build_log = &log;
	r = runner_new(p.inv, p.graph, p.selected, &p.builds, &o);
	run_install_sigint();
	if (runner_start(r) < 0)
		ret = cmd_error("%s", error_last());
	else
		ret = run_drive(r, p.inv, p.selected, p.log_dir, g, "deploy");
	runner_free(r);
	free(write_build_log(&p, &log));
	if (have_notes && notes.error)
		fprintf(stderr, "constel: could not record the deployment in %s: %s\n",
			PROVENANCE_NOTES_REF, notes.error);
out:
	if (have_notes)
		provenance_notes_release(&notes);
	buf_release(&log);
	prepared_release(&p);
	run_args_release(&a);
	return ret;
}

static int build(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct run_args a;
	struct prepared p;
	json_t *root = NULL, *hosts;
	int ret;

	(void)self;
	run_args_init(&a, opts);
	if (a.build_on && !strcmp(a.build_on, "target")) {
		run_args_release(&a);
		return cmd_error("build prints what this machine built; use 'deploy --build-on "
				 "target' to build on the hosts");
	}
	ret = prepare(g, &a, &p, false);
	if (ret != CMD_OK)
		goto out;
	build_all(&p);
	root = json_object();
	hosts = json_array();
	for (size_t i = 0; i < p.builds.nitems; i++) {
		const struct build_item *it = &p.builds.items[i];
		const char *name = p.inv->hosts[it->host].name;
		json_t *o = json_object();

		if (it->error || !it->out_path)
			ret = CMD_FAILED;
		if (!g->json && it->out_path && !it->error)
			printf("%s %s\n", name, it->out_path);
		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "arch", json_string(p.inv->hosts[it->host].arch));
		json_object_set_new(
			o, "path", it->out_path ? json_string(it->out_path) : json_null());
		json_object_set_new(o, "error", it->error ? json_string(it->error) : json_null());
		json_array_append_new(hosts, o);
	}
	json_object_set_new(root, "result", json_string(ret == CMD_OK ? "ok" : "failed"));
	json_object_set_new(root, "hosts", hosts);
	if (g->json) {
		json_dumpf(root, stdout, CMD_JSON_FLAGS);
		fputc('\n', stdout);
	}
out:
	json_decref(root);
	prepared_release(&p);
	run_args_release(&a);
	return ret;
}

static const struct opt deploy_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_WITH_DEPS,
	RUN_OPTION_GOAL,
	RUN_OPTION_PARALLEL,
	RUN_OPTION_CONFIRM_TIMEOUT,
	RUN_OPTION_NO_MAGIC,
	RUN_OPTION_NO_AUTO,
	{.name = "rollback-fleet",
		.kind = OPT_FLAG,
		.id = RUN_ROLLBACK_FLEET,
		.help = "if any host fails, restore every host this run changed, consumers first"},
	{.name = "dry-run",
		.kind = OPT_FLAG,
		.id = RUN_DRY_RUN,
		.help = "evaluate and build, touch no host"},
	RUN_OPTION_BUILD_ON,
	RUN_OPTION_ALLOW_EMULATION,
	CMD_OPTION_EVAL_JOBS,
	CMD_OPTION_EVAL_MAX_MEMORY,
	CMD_OPTION_NO_EVAL_CACHE,
	RUN_OPTION_ACTIVATION_TIMEOUT,
	RUN_OPTION_HEALTH_TIMEOUT,
	RUN_OPTION_REQUIRE_HEALTHY,
	{.name = "reboot",
		.kind = OPT_FLAG,
		.id = RUN_REBOOT,
		.help = "set the new system for boot (--goal boot), reboot, wait for the host and "
			"check it (the local host: reboot it yourself)"},
	RUN_OPTION_REBOOT_TIMEOUT,
	RUN_OPTION_REV,
	RUN_OPTION_ALLOW_DIRTY,
	RUN_OPTION_NO_SUBSTITUTE,
	RUN_OPTION_ASK_BECOME_PASS,
	RUN_OPTION_LOG_DIR,
	{NULL},
};

const struct cmd cmd_deploy_entry = {
	.name = "deploy",
	.opts = deploy_opts,
	.args = "[HOST...]",
	.summary = "build, copy, activate, confirm and health-check, in dependency order",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = deploy,
};

/* build only builds: nothing of activation, and the working tree is built as it is */
static const struct opt build_opts[] = {
	CMD_OPTION_ON,
	CMD_OPTION_WITH_DEPS,
	RUN_OPTION_BUILD_ON,
	RUN_OPTION_ALLOW_EMULATION,
	CMD_OPTION_EVAL_JOBS,
	CMD_OPTION_EVAL_MAX_MEMORY,
	CMD_OPTION_NO_EVAL_CACHE,
	RUN_OPTION_REV,
	RUN_OPTION_LOG_DIR,
	{NULL},
};

const struct cmd cmd_build_entry = {
	.name = "build",
	.opts = build_opts,
	.args = "[HOST...]",
	.summary = "build the selected hosts' systems and print host and store path",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = build,
};
