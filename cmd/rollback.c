/* constel rollback: switch hosts back to their previous (or Nth) generation. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd/run.h"
#include "deploy/provenance.h"

static int rollback(const struct cmd *self, const struct opts *opts, const struct global_opts *g)
{
	struct run_args a;
	struct runner_opts o;
	struct runner *r;
	struct inventory *inv = NULL;
	struct graph *graph = NULL;
	bool *selected = NULL;
	char *log_dir = NULL;
	struct provenance prov;
	struct provenance_notes notes;
	bool have_repo = false, have_notes = false;
	int ret;

	run_args_init(&a, opts);
	if (!a.patterns.nr) {
		cmd_error("rollback needs the hosts to roll back (names, globs or @tags)");
		ret = cmd_usage(self);
		goto out;
	}
	if ((ret = cmd_load_selection(g, &a.patterns, false, &inv, &graph, &selected)) != CMD_OK)
		goto out;
	if (!(log_dir = run_log_dir(a.log_dir))) {
		ret = cmd_error("%s", error_last());
		goto out;
	}
	run_runner_opts(&o, inv, &a, g, log_dir);
	o.op = RUNNER_ROLLBACK;
	/* a rollback is noted on HEAD, the commit the repository is at */
	have_repo = provenance_open(&prov, inv->dir) == 0;
	if (have_repo && prov.head) {
		provenance_notes_init(&notes, prov.repo_path, prov.head, false, inv);
		have_notes = true;
		o.on_result = provenance_on_result;
		o.data = &notes;
	}
	r = runner_new(inv, graph, selected, NULL, &o);
	run_install_sigint();
	if (runner_start(r) < 0)
		ret = cmd_error("%s", error_last());
	else
		ret = run_drive(r, inv, selected, log_dir, g, "rollback");
	runner_free(r);
	if (have_notes && notes.error)
		fprintf(stderr, "constel: could not record the rollback in %s: %s\n",
			PROVENANCE_NOTES_REF, notes.error);
out:
	if (have_notes)
		provenance_notes_release(&notes);
	if (have_repo)
		provenance_release(&prov);
	free(selected);
	free(log_dir);
	graph_free(graph);
	inventory_free(inv);
	run_args_release(&a);
	return ret;
}

/*
 * What a rollback honours: it activates and confirms like a deploy, but
 * builds nothing (no --rev, --build-on, --dry-run) and goes host by host
 * (no --with-deps, --rollback-fleet).
 */
static const struct opt rollback_opts[] = {
	CMD_OPTION_ON,
	{.name = "to",
		.kind = OPT_NUMBER,
		.arg = "N",
		.min = 1,
		.max = 1L << 30,
		.id = RUN_TO,
		.help = "switch to generation N (default: the one before the current)"},
	{.name = "repair",
		.kind = OPT_FLAG,
		.id = RUN_REPAIR,
		.help = "only put back what an interrupted run left (its pending record), "
			"nothing else"},
	RUN_OPTION_GOAL,
	RUN_OPTION_PARALLEL,
	RUN_OPTION_CONFIRM_TIMEOUT,
	RUN_OPTION_NO_MAGIC,
	RUN_OPTION_NO_AUTO,
	RUN_OPTION_ACTIVATION_TIMEOUT,
	RUN_OPTION_HEALTH_TIMEOUT,
	RUN_OPTION_LOG_DIR,
	{NULL},
};

const struct cmd cmd_rollback_entry = {
	.name = "rollback",
	.opts = rollback_opts,
	.args = "HOST...",
	.summary = "switch hosts back to their previous (or Nth) generation",
	.complete = CMD_COMPLETE_HOSTS,
	.fn = rollback,
};
